"""numpy-rf: a deliberately slow image-classification pipeline (numpy + scikit-learn).

Synthetic 28x28 grayscale images are summarized by 8 hand-made features, z-scored, and
classified with a random forest. Feature extraction and normalization walk over every pixel
and every value with pure-Python loops; that is where the time goes.

Public components (keep their names and signatures; each must compute the same numbers):
    make_dataset, split, extract_features, normalize_features, train_model, run_pipeline

Run it: python baseline.py [--n-samples N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.ensemble import RandomForestClassifier

N_SAMPLES = 6000
TEST_FRACTION = 0.2
PUBLIC_SEED = 0
N_CLASSES = 10
IMAGE_SIZE = 28
HALF = IMAGE_SIZE // 2

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
    """Images whose quadrant brightness depends on the class, blurred by per-image noise.

    Returns images float64 (n, 28, 28) and labels int64 (n,).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, size=n_samples).astype(np.int64)
    levels = QUADRANT_LEVELS[labels] + rng.normal(0.0, 0.17, size=(n_samples, 4))
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
    (top-left, top-right, bottom-left, bottom-right). Returns float64 (n, 8)."""
    n = images.shape[0]
    features = np.zeros((n, 8))
    for idx in range(n):
        img = images[idx]
        rows, cols = img.shape

        total = 0.0
        for i in range(rows):
            for j in range(cols):
                total += img[i][j]
        mean = total / (rows * cols)

        squares = 0.0
        for i in range(rows):
            for j in range(cols):
                squares += (img[i][j] - mean) ** 2
        std = (squares / (rows * cols)) ** 0.5

        largest = img[0][0]
        for i in range(rows):
            for j in range(cols):
                if img[i][j] > largest:
                    largest = img[i][j]

        smallest = img[0][0]
        for i in range(rows):
            for j in range(cols):
                if img[i][j] < smallest:
                    smallest = img[i][j]

        quadrant_means = []
        half_r, half_c = rows // 2, cols // 2
        for r0, c0 in ((0, 0), (0, half_c), (half_r, 0), (half_r, half_c)):
            quadrant_total = 0.0
            for i in range(r0, r0 + half_r):
                for j in range(c0, c0 + half_c):
                    quadrant_total += img[i][j]
            quadrant_means.append(quadrant_total / (half_r * half_c))

        features[idx] = [mean, std, largest, smallest, *quadrant_means]
    return features


def normalize_features(
    train_features: np.ndarray, test_features: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Z-score both sets with the train column mean and population std (a std of 0 becomes 1)."""
    n_train, n_cols = train_features.shape
    means = []
    stds = []
    for k in range(n_cols):
        total = 0.0
        for i in range(n_train):
            total += train_features[i, k]
        mean = total / n_train
        squares = 0.0
        for i in range(n_train):
            squares += (train_features[i, k] - mean) ** 2
        std = (squares / n_train) ** 0.5
        means.append(mean)
        stds.append(std if std != 0 else 1.0)

    def scale(features: np.ndarray) -> np.ndarray:
        out = np.zeros(features.shape)
        for i in range(features.shape[0]):
            for k in range(n_cols):
                out[i, k] = (features[i, k] - means[k]) / stds[k]
        return out

    return scale(train_features), scale(test_features)


def train_model(features: np.ndarray, labels: np.ndarray, seed: int) -> RandomForestClassifier:
    """A 100-tree random forest, single-threaded and seeded."""
    model = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    model.fit(features, labels)
    return model


def run_pipeline(
    train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray, seed: int
) -> dict:
    """Features -> normalization (train statistics) -> forest -> test predictions."""
    train_features = extract_features(train_images)
    test_features = extract_features(test_images)
    train_norm, test_norm = normalize_features(train_features, test_features)
    model = train_model(train_norm, train_labels, seed)
    predictions = model.predict(test_norm).astype(np.int64)
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
