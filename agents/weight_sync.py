"""Weight sync from the learner to an inference server after each update (``Learner(weight_sync=)``).

A ``weight_sync`` is any callable ``weight_sync(learner) -> None``; the learner calls it after
every policy update, before the next rollout. Shipped here:

- :class:`SGLangDiskSync`: saves the model (``save_pretrained``, atomically into a folder the
  server can read) and asks SGLang to reload it with its documented
  ``POST /update_weights_from_disk {"model_path": folder}`` (answer ``{"success": bool,
  "message": str}``). Works wherever the server shares a file system with the learner.

vLLM's own weight-update API (``/init_weight_transfer_engine``, ``/start_weight_update``,
``/update_weights``, ``/finish_weight_update`` under ``VLLM_SERVER_DEV_MODE=1`` and
``--weight-transfer-config``) moves tensors over NCCL or CUDA IPC, so it needs GPUs on both
sides; drive it from a callback with vLLM's trainer-side client
(``vllm.distributed.weight_transfer``), e.g.::

    def sync_vllm(learner):
        engine.send_weights(learner.model.named_parameters())   # vLLM's trainer engine

    Learner(config, policy=OpenAIPolicy.from_learner_config(config, base_url=url),
            weight_sync=sync_vllm)

turngym does not test that path (no GPU in CI); without a sync the learner still trains, with
the PPO ratio against the server's recorded logprobs correcting for the stale server.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx

from turngym.error import PolicyError

__all__ = ["SGLangDiskSync"]


class SGLangDiskSync:
    """Saves the learner's model to ``folder`` and makes an SGLang server reload it.

    Args:
        base_url: the server root, e.g. ``http://localhost:30000`` (a trailing ``/v1`` is
            removed: the route is not under the OpenAI prefix).
        folder: where the weights are written (each sync replaces the previous ones).
        timeout: seconds to wait for the server to reload.
    """

    def __init__(self, base_url: str, folder: str | os.PathLike, timeout: float = 600.0) -> None:
        root = base_url.rstrip("/")
        self.base_url = root[: -len("/v1")] if root.endswith("/v1") else root
        self.folder = Path(folder)
        self.timeout = timeout
        #: How many syncs succeeded.
        self.syncs = 0

    def __call__(self, learner: Any) -> None:
        """Writes the weights (merged LoRA weights for a ``peft`` model) and reloads them."""
        staging = self.folder.with_name(self.folder.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        model = learner.model
        if hasattr(model, "merge_and_unload"):  # LoRA: the server serves merged weights
            import copy

            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(staging)
        learner.tokenizer.save_pretrained(staging)
        shutil.rmtree(self.folder, ignore_errors=True)
        os.replace(staging, self.folder)
        url = f"{self.base_url}/update_weights_from_disk"
        try:
            response = httpx.post(
                url, json={"model_path": str(self.folder.resolve())}, timeout=self.timeout
            )
        except httpx.HTTPError as error:
            raise PolicyError(f"weight sync: {url} failed ({error}); is the server up?") from None
        answer = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        if response.status_code != 200 or not answer.get("success", False):
            raise PolicyError(
                f"weight sync: {url} answered HTTP {response.status_code}: "
                f"{response.text[:300]}; the server must read {self.folder} (same file system)"
            )
        self.syncs += 1
