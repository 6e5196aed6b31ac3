"""WebShop: a self-contained web shop env with WebShop's pages, actions and reward.

Modules: ``vocab`` (what the generator knows), ``catalog`` (generated and static catalogs),
``tasks`` (goals), ``nouns`` (offline noun tagger), ``reward`` (the original reward), ``search``
(BM25), ``shop`` (the state machine and its pages), ``env`` (:class:`WebShopEnv`), ``expert``,
``realdata`` (the original data files) and ``server`` (``turngym serve webshop``). Submodules load
on use, so importing this package is cheap.
"""

__all__ = ["WebShopEnv"]


def __getattr__(name: str):
    if name == "WebShopEnv":
        from turngym.envs.webshop.env import WebShopEnv

        return WebShopEnv
    raise AttributeError(f"module 'turngym.envs.webshop' has no attribute {name!r}")
