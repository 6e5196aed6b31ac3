"""The learner on CUDA with bf16 mixed precision: does it update, how fast, how much memory.

A short check (well under 4 minutes on an H100) of the GPU code path the CPU tests can only
imitate. It trains a ~35M-parameter Llama built offline (:func:`turngym.agents.tiny.build_tiny_model`:
8 layers, width 512, embedding padded to 32,000 rows; no download) or ``--model PATH`` on
Corridor with GRPO (on the dense return) at the default ``learning_rate = 1e-6`` and prints:

- the share of weights an update changed (fp32 master weights: ~100 %; the old pure-bf16 AdamW
  changed 0.9 % at this learning rate), and that the weights and AdamW state are float32;
- rollout tokens/s (generated action tokens) and update tokens/s (prompt + action tokens through
  forward and backward), per iteration;
- peak CUDA memory (``torch.cuda.max_memory_allocated``);
- recorded-vs-training log-probabilities of the sampled tokens: max and mean ``|diff|`` between
  what the rollout recorded and the training forward (bf16 autocast, as in the update), and the
  same in float32 without autocast. The ratio of the first PPO epoch is ``exp(diff)``.

    python benchmarks/learner_cuda_check.py                     # on a CUDA machine
    python benchmarks/learner_cuda_check.py --model /models/Qwen2.5-0.5B-Instruct
    python benchmarks/learner_cuda_check.py --device cpu --tiny  # the logic, on CPU (tests)

Exit status 0 when every check passes, 1 when one fails (printed as FAIL), 2 without CUDA.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

CORRIDOR = {"lengths": (2, 3, 4), "max_turns": 8}


def build_model(folder: Path, tiny: bool) -> Path:
    """A Corridor chat model built offline: ~35M parameters, or the 2-layer test size."""
    from turngym.agents.tiny import build_tiny_model

    if tiny:
        return build_tiny_model(
            folder, env_kwargs=CORRIDOR, warmup_steps=40, episodes=16, expert_fraction=0.3
        )
    return build_tiny_model(
        folder,
        env_kwargs=CORRIDOR,
        hidden_size=512,
        num_layers=8,
        model_vocab_size=32_000,
        warmup_steps=20,
        episodes=64,
        expert_fraction=0.3,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="HF causal LM folder (default: built)")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (logic only)")
    parser.add_argument("--tiny", action="store_true", help="2-layer model (CPU logic check)")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--groups", type=int, default=16, help="task groups per iteration")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-6)
    args = parser.parse_args(argv)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "learner_cuda_check: no CUDA device is visible (torch.cuda.is_available() is False; "
            f"torch {torch.__version__}). Run it on a GPU machine with a CUDA build of torch, "
            "or pass --device cpu --tiny to check the logic on CPU.",
            file=sys.stderr,
        )
        return 2
    from turngym.agents.learner import Learner
    from turngym.agents.learner_config import LearnerConfig
    from turngym.agents.logprobs import completion_logprobs

    cuda = args.device.startswith("cuda")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.model or str(build_model(Path(scratch) / "model", args.tiny))
        print(f"model: {path} (ready in {time.perf_counter() - started:.1f} s)")
        config = LearnerConfig(
            model=path,
            env_kwargs=CORRIDOR,
            credit="grpo",
            # Scores = dense returns (progress, format penalties): they differ within a group
            # even before any episode succeeds, so every iteration has a gradient.
            credit_kwargs={"score": "return"},
            output_dir=str(Path(scratch) / "run"),
            steps=args.iterations,
            groups_per_step=args.groups,
            group_size=args.group_size,
            max_new_tokens=8,
            learning_rate=args.lr,
            micro_batch_size=32,
            num_envs=args.groups * args.group_size,  # one generation batch for all episodes
            env_workers=0,
            bf16=True,
            device=args.device,
            resume=False,
        )
        learner = Learner(config)
        parameters = sum(p.numel() for p in learner.model.parameters())
        dtypes = {str(p.dtype) for p in learner.model.parameters()}
        print(
            f"parameters: {parameters / 1e6:.1f} M, weight dtypes {sorted(dtypes)}, bf16 autocast"
        )
        failures = []
        if dtypes != {"torch.float32"}:
            failures.append(f"trained weights are {dtypes}, not float32 master weights")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        for iteration in range(args.iterations):
            sync(cuda)
            tick = time.perf_counter()
            trajectories = learner.rollout()
            sync(cuda)
            rollout_seconds = time.perf_counter() - tick
            turns = [turn for t in trajectories for turn in t.turns]
            prompts = [turn.prompt_token_ids for turn in turns]
            actions = [turn.token_ids for turn in turns]
            if iteration == 0:
                failures += check_logprobs(learner, turns, completion_logprobs)
            advantages = learner.advantages(trajectories).float().cpu()
            rows = [
                (i, float(advantages[i, t]))
                for i, trajectory in enumerate(trajectories)
                for t in range(len(trajectory.turns))
            ]
            before = [p.detach().clone() for p in learner.model.parameters()]
            sync(cuda)
            tick = time.perf_counter()
            stats = learner._update(prompts, actions, [a for _, a in rows], [i for i, _ in rows])
            sync(cuda)
            update_seconds = time.perf_counter() - tick
            learner.iteration += 1
            changed = sum(
                int((p.detach() != b).sum())
                for p, b in zip(learner.model.parameters(), before, strict=True)
            )
            fraction = changed / parameters
            action_tokens = sum(map(len, actions))
            update_tokens = action_tokens + sum(map(len, prompts))
            success = sum(bool(t.success) for t in trajectories) / len(trajectories)
            print(
                f"iteration {iteration + 1}: {len(trajectories)} episodes, {len(turns)} turns, "
                f"success {success:.2f}; rollout {action_tokens / rollout_seconds:,.0f} action "
                f"tok/s ({rollout_seconds:.1f} s); update {update_tokens / update_seconds:,.0f} "
                f"tok/s ({update_seconds:.1f} s, padding {stats['padding_fraction']:.1%} sorted "
                f"vs {stats['padding_fraction_unsorted']:.1%} unsorted); weights changed "
                f"{fraction:.1%} at lr {args.lr:g}; grad norm {stats['grad_norm']:.3g}"
            )
            if fraction < 0.5:
                failures.append(f"only {fraction:.1%} of the weights changed at lr {args.lr:g}")
        state_dtypes = {
            str(v.dtype)
            for s in learner.optimizer.state.values()
            for v in s.values()
            if torch.is_tensor(v) and v.ndim > 0
        }
        print(f"AdamW state dtypes: {sorted(state_dtypes)}")
        if state_dtypes - {"torch.float32"}:
            failures.append(f"AdamW state is {state_dtypes}, not float32")
        learner.close()
        if cuda:
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(f"peak CUDA memory: {peak:.2f} GiB on {torch.cuda.get_device_name()}")
    print(f"total {time.perf_counter() - started:.0f} s")
    for failure in failures:
        print(f"FAIL: {failure}")
    print("OK" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


def sync(cuda: bool) -> None:
    if cuda:
        import torch

        torch.cuda.synchronize()


def check_logprobs(learner, turns, completion_logprobs) -> list[str]:
    """Recorded rollout log-probs vs the training forward (bf16 autocast and fp32)."""
    import torch

    recorded = [turn.logprobs for turn in turns if turn.logprobs]
    if not recorded:
        return ["the rollout recorded no log-probabilities"]
    prompts = [turn.prompt_token_ids for turn in turns]
    actions = [turn.token_ids for turn in turns]
    results = {}
    for label, autocast in (("bf16 autocast", True), ("fp32", False)):
        diffs = []
        with torch.no_grad():
            for start in range(0, len(turns), 32):
                chunk = list(range(start, min(len(turns), start + 32)))
                context = learner.autocast() if autocast else torch.autocast("cpu", enabled=False)
                with context:
                    logp, mask = completion_logprobs(
                        learner.model,
                        [prompts[i] for i in chunk],
                        [actions[i] for i in chunk],
                        pad_id=learner.tokenizer.pad_token_id,
                        sampling=learner.policy.sampling,
                        device=learner.device,
                    )
                for row, i in enumerate(chunk):
                    values = logp[row, logp.shape[1] - len(actions[i]) :].float().cpu()
                    diffs.append((values - torch.tensor(turns[i].logprobs)).abs())
        every = torch.cat(diffs)
        results[label] = (float(every.max()), float(every.mean()))
        print(
            f"recorded vs training logp ({label}): max |diff| {results[label][0]:.2e}, "
            f"mean {results[label][1]:.2e} over {every.numel()} tokens"
        )
    # The rollout ran under bf16 autocast too: beyond bf16 rounding (~1e-2 on a logit) the two
    # must agree, or the first PPO epoch's ratios are not 1.
    if results["bf16 autocast"][0] > 0.25:
        return [f"recorded vs training logp differ by up to {results['bf16 autocast'][0]:.3f}"]
    return []


if __name__ == "__main__":
    raise SystemExit(main())
