"""Tools for testing code built on bidcore.

:mod:`bidcore.testing.strategies` holds Hypothesis strategies for OpenRTB requests; it needs
``hypothesis``, which bidcore itself does not depend on, so it is imported on its own::

    from bidcore.testing.strategies import bid_requests
"""

__all__: list[str] = []
