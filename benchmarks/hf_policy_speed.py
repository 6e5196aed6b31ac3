"""HFPolicy speed, memory and log-prob fidelity: generation batch 1 vs 16, the cost of recording
log-probs, and whether recorded log-probs are those of the distribution sampled from.

1. **Rollout tokens/s.** 16 Corridor episodes live in this process; every turn one
   ``policy.act`` call gets all live conversations. The same tiny model and seed run with
   ``max_batch=1`` (one ``generate`` per episode, the baseline) and ``max_batch=16`` (one
   ``generate`` for all), and the table prints generated tokens/s and the ratio.
2. **Memory per act call** on a model with a large vocabulary (151,936 rows, Qwen2.5's), built
   offline with :func:`turngym.agents.tiny.build_tiny_model`. The baseline is the earlier
   HFPolicy's way of recording log-probs (``output_logits=True``, all steps' full-vocabulary
   logits stacked, copied to the host as float32 and log-softmaxed there); it is re-implemented
   here as :func:`legacy_act` and measured in the same run as the current ``HFPolicy.act``
   (sampled tokens' log-probs gathered on the device) and ``return_logprobs=False``. Every
   variant runs in a fresh child process; the figure is its peak resident memory during the
   call (Linux ``VmHWM``, reset just before) above the resident memory before it, and on a GPU
   the CUDA peak above the allocation before it.
3. **Log-prob fidelity** with a tiny model whose *saved* generation config sets
   ``repetition_penalty=1.3`` (as many hub models ship one): ``|recorded - reference|`` per
   sampled token, where the reference is the learner's teacher-forced forward under the
   distribution that was really sampled from. Baseline: :func:`legacy_act` (``generate``
   applied the saved penalty, the raw softmax was recorded). Now: ``HFPolicy`` with its
   default sampling (the saved config set aside) and with ``sampling="model"`` (adopted).

    python benchmarks/hf_policy_speed.py [--quick] [--vocab 151936] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

import turngym
from turngym.agents.hf import HFPolicy
from turngym.agents.tiny import tiny_model_dir
from turngym.policy import Conversation

CORRIDOR = {"lengths": (1, 2, 3), "max_turns": 6}


def rollout_tokens_per_second(
    path: Path, max_batch: int, episodes: int, device: str, repeats: int
) -> tuple[float, int]:
    """Generated tokens/s over ``episodes`` in-process Corridor episodes, all acting per turn."""
    policy = HFPolicy.from_pretrained(
        path, max_new_tokens=8, seed=0, device=device, max_batch=max_batch
    )
    best, tokens = 0.0, 0
    for _ in range(repeats):
        envs = [turngym.make("turngym/Corridor-v0", **CORRIDOR) for _ in range(episodes)]
        live = {}
        for index, env in enumerate(envs):
            observation, info = env.reset(seed=index)
            live[index] = Conversation.start(info.get("instructions", ""), observation)
            live[index].admissible_actions = info.get("admissible_actions")
        tokens, start = 0, time.perf_counter()
        while live:
            slots = sorted(live)
            actions = policy.act([live[slot] for slot in slots])
            for slot, action in zip(slots, actions, strict=True):
                tokens += len(action.token_ids)
                observation, _, terminated, truncated, info = envs[slot].step(action.text)
                if terminated or truncated:
                    del live[slot]
                    continue
                live[slot].messages += [
                    {"role": "assistant", "content": action.text},
                    {"role": "user", "content": observation},
                ]
                live[slot].admissible_actions = info.get("admissible_actions")
        best = max(best, tokens / (time.perf_counter() - start))
    return best, tokens


@torch.no_grad()
def legacy_act(
    policy: HFPolicy, batch: list[Conversation], full_length: bool = True
) -> tuple[list[list[int]], list[list[int]], list[list[float]]]:
    """The earlier HFPolicy's sampling and log-prob recording: the model's saved generation
    config applied by ``generate``, full-vocabulary logits to the host, the raw softmax recorded.

    Returns ``(prompts, actions, logprobs)``, actions cut after the first stop token.
    """
    prompts = [policy.prompt_ids(conversation) for conversation in batch]
    width = max(len(ids) for ids in prompts)
    pad = policy.tokenizer.pad_token_id
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention_mask[row, width - len(ids) :] = 1
    output = policy.model.generate(
        input_ids=input_ids.to(policy.device),
        attention_mask=attention_mask.to(policy.device),
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        max_new_tokens=policy.max_new_tokens,
        min_new_tokens=policy.max_new_tokens if full_length else None,
        pad_token_id=pad,
        eos_token_id=policy.stop_token_ids or None,
        return_dict_in_generate=True,
        output_logits=True,
    )
    new_tokens = output.sequences[:, width:].cpu()
    logits = torch.stack(output.logits, dim=1).float().cpu()
    logprobs = torch.log_softmax(logits, dim=-1)
    chosen = logprobs.gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
    actions, recorded = [], []
    for row in range(len(prompts)):
        tokens = new_tokens[row].tolist()
        stops = [i for i, token in enumerate(tokens) if token in policy.stop_token_ids]
        length = stops[0] + 1 if stops else len(tokens)
        actions.append(tokens[:length])
        recorded.append(chosen[row, :length].tolist())
    return prompts, actions, recorded


def _differences(model, prompts, actions, recorded, pad_id, sampling) -> torch.Tensor:
    """``|recorded - teacher-forced|`` of every action token under ``sampling``."""
    from turngym.agents.logprobs import completion_logprobs

    with torch.no_grad():
        logprobs, _ = completion_logprobs(model, prompts, actions, pad_id=pad_id, sampling=sampling)
    out = []
    for row, (action, values) in enumerate(zip(actions, recorded, strict=True)):
        training = logprobs[row, logprobs.shape[1] - len(action) :].float().cpu()
        out.append((training - torch.tensor(values)).abs())
    return torch.cat(out)


def fidelity_table(device: str, episodes: int) -> None:
    import warnings

    from turngym.agents.sampling import SamplingConfig

    path = tiny_model_dir(
        env_kwargs={"lengths": (1, 2)},
        warmup_steps=60,
        generation_config={"do_sample": True, "repetition_penalty": 1.3},
    )
    batch = []
    for index in range(episodes):
        env = turngym.make("turngym/Corridor-v0", **CORRIDOR)
        observation, info = env.reset(seed=index)
        conversation = Conversation.start(info.get("instructions", ""), observation)
        for _ in range(index % 4):  # repeated actions in the context: the penalty bites
            conversation.messages += [
                {"role": "assistant", "content": "go east"},
                {"role": "user", "content": observation},
            ]
        batch.append(conversation)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the saved config's warning, expected here
        legacy = HFPolicy.from_pretrained(path, max_new_tokens=8, device=device)
        default = HFPolicy.from_pretrained(path, max_new_tokens=8, seed=0, device=device)
    adopted = HFPolicy.from_pretrained(
        path, max_new_tokens=8, seed=0, device=device, sampling="model"
    )
    torch.manual_seed(0)
    prompts, actions, recorded = legacy_act(legacy, batch, full_length=False)
    sampled_from = SamplingConfig(repetition_penalty=1.3)
    pad = legacy.tokenizer.pad_token_id
    rows.append(
        (
            "earlier: saved penalty applied, raw softmax recorded",
            _differences(legacy.model, prompts, actions, recorded, pad, sampled_from),
        )
    )
    for name, policy in (
        ("now, default: saved config set aside", default),
        ("now, sampling='model': penalty adopted", adopted),
    ):
        generated = policy.act(batch)
        rows.append(
            (
                name,
                _differences(
                    policy.model,
                    [a.prompt_token_ids for a in generated],
                    [a.token_ids for a in generated],
                    [a.logprobs for a in generated],
                    pad,
                    policy.sampling,
                ),
            )
        )
    dtype = next(default.model.parameters()).dtype
    print(
        f"\nlog-prob fidelity: saved generation config repetition_penalty=1.3, {episodes} "
        f"prompts, device {device}, model dtype {str(dtype).split('.')[-1]}"
    )
    print(f"{'recording':<56} {'tokens':>6} {'mean |diff|':>12} {'max |diff|':>11}")
    for name, diffs in rows:
        print(
            f"{name:<56} {len(diffs):>6} {float(diffs.mean()):>12.2e} {float(diffs.max()):>11.2e}"
        )


def _status_bytes(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM`` = peak RSS) in bytes."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> None:
    """Resets VmHWM to the current RSS (Linux ``clear_refs`` 5), so the peak covers one call."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def measure_call(path: str, variant: str, batch: int, new_tokens: int, device: str) -> dict:
    """One act call of ``variant`` (run in a fresh child process): peak memory and seconds."""
    torch.set_num_threads(1)
    policy = HFPolicy.from_pretrained(
        path,
        max_new_tokens=new_tokens,
        seed=0,
        device=device,
        max_batch=batch,
        return_logprobs=variant != "no-logprobs",
    )
    # Untrained rows rarely emit EOS; no stop token keeps every variant at full length.
    policy.stop_token_ids = []
    conversations = [
        Conversation(messages=[{"role": "user", "content": f"You are in a corridor, step {i}."}])
        for i in range(batch)
    ]
    warm = HFPolicy(policy.model, policy.tokenizer, max_new_tokens=1, device=device)
    warm.act(conversations[:1])
    cuda = policy.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cuda_before = torch.cuda.memory_allocated()
    _reset_peak_rss()
    rss_before = _status_bytes("VmRSS")
    start = time.perf_counter()
    if variant == "legacy":
        legacy_act(policy, conversations)
    else:
        policy.act(conversations)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = _status_bytes("VmHWM")
    return {
        "variant": variant,
        "seconds": seconds,
        "host_peak_mb": max(0, peak - rss_before) / 2**20,
        "cuda_peak_mb": (torch.cuda.max_memory_allocated() - cuda_before) / 2**20 if cuda else None,
    }


def memory_table(vocab: int, batch: int, new_tokens: int, device: str) -> None:
    path = str(tiny_model_dir(warmup_steps=0, episodes=8, model_vocab_size=vocab))
    rows = []
    for variant in ("legacy", "device-gather", "no-logprobs"):
        code = (
            f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import hf_policy_speed as b; "
            f"print(json.dumps(b.measure_call({path!r}, {variant!r}, {batch}, {new_tokens}, {device!r})))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    base = rows[0]
    print(
        f"\nmemory per act call: vocabulary {vocab:,}, batch {batch}, {new_tokens} new tokens, "
        f"device {device}; full-vocabulary float32 logits of the call = "
        f"{batch * new_tokens * vocab * 4 / 2**20:,.0f} MB"
    )
    print(f"{'log-prob recording':<52} {'host peak MB':>12} {'CUDA peak MB':>12} {'s/call':>8}")
    names = {
        "legacy": "earlier: all logits to host, log_softmax on CPU (baseline)",
        "device-gather": "now: sampled tokens' log-probs gathered on device",
        "no-logprobs": "now: return_logprobs=False",
    }
    for row in rows:
        cuda = "-" if row["cuda_peak_mb"] is None else f"{row['cuda_peak_mb']:.0f}"
        print(
            f"{names[row['variant']]:<52} {row['host_peak_mb']:>12.0f} {cuda:>12} "
            f"{row['seconds']:>8.2f}"
        )
    ratio = base["host_peak_mb"] / max(rows[1]["host_peak_mb"], 1e-9)
    print(f"host peak ratio baseline/now: {ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (CI smoke size)")
    parser.add_argument("--vocab", type=int, default=151_936, help="large-vocabulary model rows")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    path = tiny_model_dir(env_kwargs={"lengths": (1, 2)}, warmup_steps=60)
    episodes, repeats = 16, (1 if args.quick else 3)
    print(f"rollout: {episodes} Corridor episodes in one process, tiny model, device {args.device}")
    print(f"{'generation batch':<40} {'tokens':>7} {'tokens/s':>10} {'vs batch 1':>10}")
    base = None
    for max_batch in (1, 16):
        rate, tokens = rollout_tokens_per_second(path, max_batch, episodes, args.device, repeats)
        base = base or rate
        print(f"{f'max_batch={max_batch}':<40} {tokens:>7} {rate:>10.1f} {rate / base:>9.2f}x")
    fidelity_table(args.device, 8 if args.quick else 32)
    vocab = 8_192 if args.quick else args.vocab
    batch, new_tokens = (4, 8) if args.quick else (16, 32)
    memory_table(vocab, batch, new_tokens, args.device)


if __name__ == "__main__":
    main()
