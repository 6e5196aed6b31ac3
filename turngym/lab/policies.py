"""The lab's policies: softmax over admissible actions with no capacity question.

Both policies score *cells*, one per (context, admissible action) pair:

- :class:`TabularPolicy`: the context is ``info["state_key"]``; one free logit per cell.
- :class:`LinearPolicy`: for envs whose states do not repeat exactly; a cell's logit is
  ``w . phi(observation, action)``, ``phi`` a hashed bag of the action's words, crossed with
  the observation's words (a fixed feature map; only ``w`` is learned).

A policy returns :class:`~turngym.policy.GeneratedAction` objects that record, on each turn, the
candidate cells (``prompt_token_ids``), the chosen cell (``token_ids``) and its behaviour
log-probability (``logprobs``): the rollout keeps them on ``Turn`` like any model's tokens, so the
update reads everything from the trajectories a plain ``turngym.rollout`` returns.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import torch
from torch import nn

from turngym.error import InvalidArgumentError
from turngym.policy import Conversation, GeneratedAction, normalize_action

__all__ = ["CellPolicy", "LinearPolicy", "TabularPolicy", "make_policy", "POLICIES"]

_WORD = re.compile(r"[a-z0-9]+")


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class CellPolicy(nn.Module):
    """Softmax over the admissible actions' cell logits, sampled with its own seeded RNG."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.rng = np.random.default_rng(seed)
        self._cells: dict[tuple, int] = {}

    # -------------------------------------------------------------- what subclasses define
    def context(self, conversation: Conversation) -> str:
        """The key a cell's context is identified by."""
        raise NotImplementedError

    def _new_cell(self, key: tuple, conversation: Conversation) -> None:
        """Called once when ``key`` (context, action) gets its cell id."""

    def logits(self, cells: torch.Tensor) -> torch.Tensor:
        """Logits of the cells (any shape of int64 ids)."""
        raise NotImplementedError

    # -------------------------------------------------------------- shared
    def cell(self, context: str, action: str, conversation: Conversation | None = None) -> int:
        """The id of the (context, action) cell, made on first use."""
        key = (context, normalize_action(action))
        if key not in self._cells:
            self._cells[key] = len(self._cells)
            self._new_cell(key, conversation)
        return self._cells[key]

    @property
    def num_cells(self) -> int:
        return len(self._cells)

    def act(self, batch: list[Conversation]) -> list[GeneratedAction]:
        """Samples one admissible action per conversation (one logits call for the batch)."""
        candidates = []
        for conversation in batch:
            actions = conversation.admissible_actions
            if not actions:
                raise InvalidArgumentError(
                    f"{conversation.env_id or 'this env'} reported no admissible actions at turn "
                    f"{conversation.turn}; the credit lab's policies choose among "
                    "info['admissible_actions'], so use an env that lists them."
                )
            context = self.context(conversation)
            candidates.append([self.cell(context, a, conversation) for a in actions])
        with torch.no_grad():
            flat = self.logits(torch.tensor([c for cells in candidates for c in cells]))
        flat = flat.double().numpy()
        out, start = [], 0
        for conversation, cells in zip(batch, candidates, strict=True):
            logits = flat[start : start + len(cells)]
            start += len(cells)
            logp = logits - logits.max()
            logp = logp - np.log(np.exp(logp).sum())
            probs = np.exp(logp)
            choice = int(self.rng.choice(len(cells), p=probs / probs.sum()))
            out.append(
                GeneratedAction(
                    text=conversation.admissible_actions[choice],
                    token_ids=[cells[choice]],
                    logprobs=[float(logp[choice])],
                    prompt_token_ids=cells,
                )
            )
        return out


class TabularPolicy(CellPolicy):
    """One logit per (``state_key``, admissible action); ``capacity`` cells at most."""

    def __init__(self, seed: int = 0, capacity: int = 200_000) -> None:
        super().__init__(seed)
        self.capacity = int(capacity)
        # float64: rounding noise in a gradient that cancels to 0 stays far below Adam's eps,
        # which would otherwise turn it into full-size steps
        self.table = nn.Parameter(torch.zeros(self.capacity, dtype=torch.float64))

    def context(self, conversation: Conversation) -> str:
        key = conversation.info.get("state_key")
        if key is None:
            raise InvalidArgumentError(
                f"{conversation.env_id or 'this env'} reports no info['state_key']; the tabular "
                "policy keys its table on it. Use --policy linear for envs without state keys."
            )
        return str(key)

    def _new_cell(self, key: tuple, conversation: Conversation | None) -> None:
        if len(self._cells) > self.capacity:
            raise InvalidArgumentError(
                f"the tabular policy's {self.capacity} cells are all used (states x actions "
                "seen so far); train on fewer tasks, use --policy linear, or build "
                "TabularPolicy(capacity=...) yourself."
            )

    def logits(self, cells: torch.Tensor) -> torch.Tensor:
        return self.table[cells]


class LinearPolicy(CellPolicy):
    """``logit = w . phi(observation, action)`` over ``2**bits`` hashed features."""

    def __init__(self, seed: int = 0, bits: int = 16) -> None:
        super().__init__(seed)
        self.dim = 2 ** int(bits)
        self.weight = nn.Parameter(torch.zeros(self.dim, dtype=torch.float64))
        self._features: list[torch.Tensor] = []  # one int64 vector of feature ids per cell

    def context(self, conversation: Conversation) -> str:
        return conversation.observation

    def _new_cell(self, key: tuple, conversation: Conversation | None) -> None:
        observation, action = key
        action_words = _WORD.findall(action)
        observation_words = sorted(set(_WORD.findall(observation.lower())))
        names = [f"a:{a}" for a in action_words] + [f"a={action}"]
        names += [f"{o}|{a}" for o in observation_words for a in action_words]
        ids = sorted({_hash(n) % self.dim for n in names})
        self._features.append(torch.tensor(ids, dtype=torch.long))

    def logits(self, cells: torch.Tensor) -> torch.Tensor:
        flat = cells.reshape(-1).tolist()
        features = [self._features[c] for c in flat]
        counts = torch.tensor([len(f) for f in features], dtype=torch.long)
        owner = torch.repeat_interleave(torch.arange(len(flat)), counts)
        values = torch.zeros(len(flat), dtype=self.weight.dtype).index_add(
            0, owner, self.weight[torch.cat(features)] if features else self.weight[:0]
        )
        return values.reshape(cells.shape)


POLICIES = {"tabular": TabularPolicy, "linear": LinearPolicy}


def make_policy(kind: str, seed: int, **kwargs: int) -> CellPolicy:
    """A fresh policy of ``kind`` (``tabular`` or ``linear``) with all logits 0 (uniform)."""
    if kind not in POLICIES:
        raise InvalidArgumentError(f"policy={kind!r} is not valid; use one of {sorted(POLICIES)}.")
    return POLICIES[kind](seed=seed, **kwargs)
