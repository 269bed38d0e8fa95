"""The agent side of an episode: the loop, model providers, offline agents and tools."""
