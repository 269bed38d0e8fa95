"""pytorch-nn reference solution (hidden from the agent): vectorized features, batched training.

Same dataset, features, normalization, SimpleNN, Adam, loss and seeding as the baseline. The
pixel loops become whole-array numpy reductions, and training walks each epoch's seeded
shuffle in mini-batches of BATCH_SIZE instead of one sample per step, with no per-step
loss.item() sync. Every epoch still covers the whole training set through model(x).

Run it: python reference.py [--n-samples N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

N_SAMPLES = 3000
EPOCHS = 7
LEARNING_RATE = 1e-3
BATCH_SIZE = 16
TEST_FRACTION = 0.2
PUBLIC_SEED = 0
N_CLASSES = 10
IMAGE_SIZE = 28
HALF = IMAGE_SIZE // 2
LABEL_NOISE = 0.15
LEVEL_NOISE = 0.06

# Brightness level of each 14x14 quadrant (top-left, top-right, bottom-left, bottom-right)
# for each class: the signal the features can pick up.
QUADRANT_LEVELS = np.array(
    [
        [0.8, 0.2, 0.2, 0.2],
        [0.2, 0.8, 0.2, 0.2],
        [0.2, 0.2, 0.8, 0.2],
        [0.2, 0.2, 0.2, 0.8],
        [0.8, 0.8, 0.2, 0.2],
        [0.2, 0.2, 0.8, 0.8],
        [0.8, 0.2, 0.8, 0.2],
        [0.2, 0.8, 0.2, 0.8],
        [0.8, 0.2, 0.2, 0.8],
        [0.2, 0.8, 0.8, 0.2],
    ]
)


def make_dataset(n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose quadrant brightness depends on the class, plus pixel noise.

    A fraction LABEL_NOISE of the images show the pattern of a random class instead of their
    own: that caps the reachable accuracy while the classes stay well separated, so any
    well-trained model lands on about the same accuracy.
    Returns images float64 (n, 28, 28) and labels int64 (n,).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, size=n_samples).astype(np.int64)
    swapped = rng.random(n_samples) < LABEL_NOISE
    shown = np.where(swapped, rng.integers(0, N_CLASSES, size=n_samples), labels)
    levels = QUADRANT_LEVELS[shown] + rng.normal(0.0, LEVEL_NOISE, size=(n_samples, 4))
    contrast = rng.uniform(0.6, 1.4, size=(n_samples, 1))
    offset = rng.uniform(-0.2, 0.2, size=(n_samples, 1))
    levels = offset + contrast * levels
    # Expand the 4 quadrant levels to a 28x28 map: (n, 2, 2) -> (n, 28, 28).
    level_map = np.repeat(np.repeat(levels.reshape(n_samples, 2, 2), HALF, axis=1), HALF, axis=2)
    noise = rng.normal(0.0, 0.5, size=(n_samples, IMAGE_SIZE, IMAGE_SIZE))
    return level_map + noise, labels


def split(
    images: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First (1 - TEST_FRACTION) of the samples for training, the rest for testing."""
    n_train = len(images) - round(len(images) * TEST_FRACTION)
    return images[:n_train], labels[:n_train], images[n_train:], labels[n_train:]


def extract_features(images: np.ndarray) -> np.ndarray:
    """Per image: mean, population std, max, min, then the mean of each 14x14 quadrant
    (top-left, top-right, bottom-left, bottom-right). Returns float64 (n, 8).

    Whole-array reductions replace the per-pixel loops."""
    n, rows, cols = images.shape
    flat = images.reshape(n, rows * cols)
    half_r, half_c = rows // 2, cols // 2
    columns = [flat.mean(axis=1), flat.std(axis=1), flat.max(axis=1), flat.min(axis=1)]
    for r0, c0 in ((0, 0), (0, half_c), (half_r, 0), (half_r, half_c)):
        columns.append(images[:, r0 : r0 + half_r, c0 : c0 + half_c].mean(axis=(1, 2)))
    return np.stack(columns, axis=1).astype(np.float64, copy=False)


def normalize_features(
    train_features: np.ndarray, test_features: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Z-score both sets with the train column mean and population std (a std of 0 becomes 1)."""
    means = train_features.mean(axis=0)
    stds = train_features.std(axis=0)
    stds = np.where(stds == 0, 1.0, stds)
    return (train_features - means) / stds, (test_features - means) / stds


class SimpleNN(nn.Module):
    """8 features -> 64 -> 32 -> 10 class scores, with ReLU between the layers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 64)
        self.fc2 = nn.Linear(64, 32)
        self.fc3 = nn.Linear(32, N_CLASSES)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def train_model(
    features: np.ndarray, labels: np.ndarray, seed: int, epochs: int = EPOCHS
) -> SimpleNN:
    """Adam + cross-entropy over mini-batches of a fresh seeded shuffle every epoch."""
    torch.manual_seed(seed)
    model = SimpleNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)

    x_all = torch.tensor(features, dtype=torch.float32)
    y_all = torch.tensor(labels, dtype=torch.int64)
    n = len(x_all)
    model.train()
    for _epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        x_epoch, y_epoch = x_all[order], y_all[order]
        for start in range(0, n, BATCH_SIZE):
            optimizer.zero_grad()
            loss = loss_fn(
                model(x_epoch[start : start + BATCH_SIZE]), y_epoch[start : start + BATCH_SIZE]
            )
            loss.backward()
            optimizer.step()
    return model


def predict(model: SimpleNN, features: np.ndarray) -> np.ndarray:
    """Most likely class per row, as int64."""
    model.eval()
    with torch.no_grad():
        scores = model(torch.tensor(features, dtype=torch.float32))
    return scores.argmax(dim=1).numpy().astype(np.int64)


def run_pipeline(
    train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray, seed: int
) -> dict:
    """Features -> normalization (train statistics) -> MLP training -> test predictions."""
    train_features = extract_features(train_images)
    test_features = extract_features(test_images)
    train_norm, test_norm = normalize_features(train_features, test_features)
    model = train_model(train_norm, train_labels, seed)
    predictions = predict(model, test_norm)
    return {"model": model, "predictions": predictions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=N_SAMPLES)
    args = parser.parse_args()

    images, labels = make_dataset(args.n_samples, PUBLIC_SEED)
    train_images, train_labels, test_images, test_labels = split(images, labels)
    start = time.perf_counter()
    result = run_pipeline(train_images, train_labels, test_images, PUBLIC_SEED)
    elapsed = time.perf_counter() - start
    accuracy = float(np.mean(result["predictions"] == test_labels))
    print(f"samples: {args.n_samples} (train {len(train_labels)}, test {len(test_labels)})")
    print(f"run_pipeline time: {elapsed:.2f} s")
    print(f"test accuracy: {accuracy:.4f} (chance 0.10)")


if __name__ == "__main__":
    main()
