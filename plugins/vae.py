"""VAE baseline (S6). Filled in by the architectures issue (#7)."""
