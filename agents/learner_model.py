"""The learner's model setup: tokenizer, trained weights (full or LoRA), KL reference, optimizer.

Trained weights stay float32 (master weights; bf16 is autocast compute); a frozen LoRA base is
never updated, so it may live in bf16. The KL reference is always the *initial* policy, also
after a resume (:func:`~turngym.agents.learner_io.initial_model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from turngym.agents.learner_io import initial_model

__all__ = ["LearnerModel", "load_learner_model"]


@dataclass
class LearnerModel:
    """What :func:`load_learner_model` builds for a learner."""

    #: The tokenizer (pad token set).
    tokenizer: Any
    #: The trained model (a ``peft`` model under LoRA), in train mode on the learner's device.
    model: Any
    #: The frozen KL reference, or None (no KL, or LoRA: the base with its adapter disabled).
    reference: Any
    #: AdamW over the trainable parameters.
    optimizer: torch.optim.Optimizer


def load_learner_model(
    learner: Any,
    *,
    checkpoint: Path | None,
    model: Any = None,
    tokenizer: Any = None,
) -> LearnerModel:
    """Loads (or adopts) the model and tokenizer of ``learner.config`` and builds the optimizer.

    Args:
        learner: the learner being built; its ``config``, ``device``, ``bf16`` and
            ``output_dir`` are read (the reference is saved under ``output_dir``).
        checkpoint: the checkpoint folder to resume from, or None for a fresh run.
        model, tokenizer: an already-loaded model/tokenizer instead of loading ``config.model``
            (a resumed run loads the checkpoint's weights instead of ``model``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = learner.config
    resuming = checkpoint is not None
    cuda = learner.device.type == "cuda"
    source = str(checkpoint / "model") if resuming and not config.lora else config.model
    dtype = torch.bfloat16 if learner.bf16 and config.lora else torch.float32
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(config.model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    base = (
        model
        if model is not None and not resuming
        else AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    )
    base = base.to(device=learner.device, dtype=dtype)
    reference = None
    if config.kl_coef > 0 and not config.lora:
        reference = initial_model(learner, base, given=model is not None, resuming=resuming)
    checkpointing = (
        config.gradient_checkpointing if config.gradient_checkpointing is not None else cuda
    )
    if checkpointing:
        base.gradient_checkpointing_enable()
        if config.lora:  # frozen embeddings: let gradients reach the checkpointed adapters
            base.enable_input_require_grads()
    if config.lora:
        base = _with_lora(base, config, checkpoint)
    base.train()
    optimizer = torch.optim.AdamW(
        [p for p in base.parameters() if p.requires_grad],
        lr=config.learning_rate,
        betas=config.adam_betas,
        weight_decay=config.weight_decay,
    )
    return LearnerModel(tokenizer=tokenizer, model=base, reference=reference, optimizer=optimizer)


def _with_lora(base: Any, config: Any, checkpoint: Path | None) -> Any:
    """``base`` with trainable LoRA adapters (the checkpoint's when resuming), float32."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if checkpoint is not None:
        base = PeftModel.from_pretrained(base, str(checkpoint / "model"), is_trainable=True)
    else:
        base = get_peft_model(
            base,
            LoraConfig(
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=config.lora_target_modules or "all-linear",
                task_type="CAUSAL_LM",
            ),
        )
    # Adapters are trained: float32 master weights even over a bf16 base.
    for parameter in base.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.float()
    return base
