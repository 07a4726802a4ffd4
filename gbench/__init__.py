"""gbench: which GAN variant is better, by how much, and at what cost."""

import pluggy

__version__ = "0.1.0"

#: Decorate plugin functions with this: ``@hookimpl def gbench_register_architectures(register): ...``
hookimpl = pluggy.HookimplMarker("gbench")

__all__ = ["hookimpl", "__version__"]
