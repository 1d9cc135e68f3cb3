"""Tools for testing code built on bidcore.

:mod:`bidcore.testing.strategies` holds Hypothesis strategies for OpenRTB requests; it needs
``hypothesis``, which bidcore itself does not depend on, so it is imported on its own::

    from bidcore.testing.strategies import bid_requests

:mod:`bidcore.testing.models` trains small LightGBM models on generated CTR-like data,
deterministically; it needs ``lightgbm`` (the ``bidcore[compile]`` extra)::

    from bidcore.testing.models import ModelSpec, model_path
"""

__all__: list[str] = []
