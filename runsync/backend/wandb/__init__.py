"""Weights & Biases: login, transports per client generation, paging, filters and the GraphQL documents."""
