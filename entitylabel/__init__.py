from importlib.metadata import version as _v
__version__ = "0.1.0"


def __getattr__(name: str):  # lazy so `import entitylabel` stays light: datasets loads on first use
    if name in ("load", "download"):
        from .export import load as _load_module

        return getattr(_load_module, name)
    raise AttributeError(f"module 'entitylabel' has no attribute {name!r}")
