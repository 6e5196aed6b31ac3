"""The web shop's HTML page: a view of a :class:`~.env.WebShopEnv`'s current shop elements (the
forms post the same ``click[...]`` / ``search[...]`` actions an agent sends to ``env.step``)."""

from __future__ import annotations

import html

from turngym.envs.webshop.env import WebShopEnv
from turngym.envs.webshop.shop import Element

__all__ = ["NO_SESSION", "render_html"]

_STYLE = """
body{font-family:Arial,sans-serif;background:#f3f3f3;margin:0}
header{background:#232f3e;color:#fff;padding:12px 24px;font-size:22px}
#instruction{background:#febd69;padding:10px 24px;font-size:16px}
main{background:#fff;margin:16px 24px;padding:16px;border-radius:6px}
button{margin:4px;padding:6px 12px;border:1px solid #a88734;border-radius:4px;background:#f0c14b;cursor:pointer}
button.option{background:#fff;border-color:#888}button.option.selected{background:#2a7ab0;color:#fff}
.product-link{background:#e7f4ff;border-color:#2a7ab0}.text{margin:6px 4px}.feedback{color:#b12704}
#score{font-size:28px;color:#067d62}
"""
NO_SESSION = '<p>No such session (it may have expired). <a href="/">Start shopping</a></p>'


def _button(element: Element) -> str:
    classes = {"button": "btn", "product": "btn product-link", "option": "btn option"}[element.kind]
    if element.selected:
        classes += " selected"
    value = html.escape(f"click[{element.target}]", quote=True)
    label = html.escape(element.text)
    disabled = " disabled" if element.target is None else ""
    return f'<form method="post" style="display:inline"><button class="{classes}" name="action" value="{value}"{disabled}>{label}</button></form>'


def render_html(env: WebShopEnv, feedback: str = "") -> str:
    """One page of the env's current state as HTML."""
    shop = env.shop
    parts = [
        f'<div id="instruction"><b>Instruction:</b> {html.escape(shop.instruction)}</div><main id="page-{shop.page}">'
    ]
    if feedback:
        parts.append(f'<p class="feedback">{html.escape(feedback)}</p>')
    if shop.page == "search":
        parts.append(
            '<form method="post"><input id="search_input" name="q" size="60" autofocus>'
            '<button class="btn" id="search_button">Search</button></form>'
        )
    for element in shop.elements():
        if shop.page == "search":
            break
        if element.kind == "text":
            parts.append(f'<div class="text">{html.escape(element.text)}</div>')
        else:
            parts.append(_button(element))
    if shop.page == "done":
        score = env.purchase_reward or 0.0
        parts.append(
            f'<div>Your score (min 0.0, max 1.0)</div><div id="score">{score:.4f}</div>'
            '<p><a href="/">Start a new task</a></p>'
        )
    parts.append("</main>")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>WebShop - turngym</title>"
        f"<style>{_STYLE}</style></head><body><header>WebShop</header>{''.join(parts)}</body></html>"
    )
