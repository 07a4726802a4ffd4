"""DCGAN architecture (S2). Filled in by the architectures issue (#7)."""
