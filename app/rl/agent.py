"""A DQN (stable-baselines3) that learns in ``ExecutionEnv``, and its folder on disk.

The folder holds ``model.zip`` (stable-baselines3's own format) and ``meta.json``: the ticker,
the training window, the environment and risk settings the agent was trained under and the
DQN settings, so ``rl-eval`` rebuilds the same environment on the held-out days. The device
is a parameter ("auto": CUDA when present, else CPU).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.config import CostSettings, RiskSettings
from app.errors import InputError
from app.rl.env import EnvConfig, ExecutionEnv

MODEL_FILE = "model.zip"
META_FILE = "meta.json"
Policy = Callable[[np.ndarray], int]


@dataclass(frozen=True, slots=True)
class DqnConfig:
    """DQN settings (stable-baselines3 names). Small net, short replay: the observation is 16
    numbers and an episode is a day of 5-minute bars."""

    steps: int = 20_000
    learning_rate: float = 1e-3
    buffer_size: int = 50_000
    learning_starts: int = 500
    batch_size: int = 64
    gamma: float = 0.95
    n_steps: int = 4  # multi-step returns: an entry's fee and its later drift in one target
    train_freq: int = 4
    target_update_interval: int = 250
    exploration_fraction: float = 0.3
    exploration_final_eps: float = 0.05
    net_arch: tuple[int, ...] = (64, 64)
    seed: int = 0
    device: str = "auto"
    threads: int = 1  # torch CPU threads while training: one is fastest for a 64x64 net

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise InputError(f"steps={self.steps}: must be >= 1")
        if self.threads < 1:
            raise InputError(f"threads={self.threads}: must be >= 1")


def train_dqn(env: ExecutionEnv, config: DqnConfig) -> Any:
    """Train a DQN for ``config.steps`` environment steps; returns the stable-baselines3 model.
    Torch's CPU thread count is ``config.threads`` during the call, restored after."""
    import torch
    from stable_baselines3 import DQN

    previous = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _learn(DQN, env, config)
    finally:
        torch.set_num_threads(previous)


def _learn(dqn_class: Any, env: ExecutionEnv, config: DqnConfig) -> Any:
    model = dqn_class(
        "MlpPolicy",
        env,
        learning_rate=config.learning_rate,
        buffer_size=config.buffer_size,
        learning_starts=min(config.learning_starts, max(1, config.steps // 4)),
        batch_size=config.batch_size,
        gamma=config.gamma,
        n_steps=config.n_steps,
        train_freq=config.train_freq,
        target_update_interval=config.target_update_interval,
        exploration_fraction=config.exploration_fraction,
        exploration_final_eps=config.exploration_final_eps,
        policy_kwargs={"net_arch": list(config.net_arch)},
        seed=config.seed,
        device=config.device,
        verbose=0,
    )
    model.learn(total_timesteps=config.steps)
    return model


def greedy_policy(model: Any) -> Policy:
    """The trained agent's action (greedy, no exploration) for an observation."""

    def act(obs: np.ndarray) -> int:
        action, _ = model.predict(obs, deterministic=True)
        return int(action)

    return act


def save_agent(model: Any, out: Path, meta: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / MODEL_FILE)
    (out / META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    return out


def load_agent(folder: Path, device: str = "auto") -> tuple[Any, dict[str, Any]]:
    """The model and its meta.json from a folder ``save_agent`` wrote."""
    from stable_baselines3 import DQN

    model_path, meta_path = folder / MODEL_FILE, folder / META_FILE
    for path in (model_path, meta_path):
        if not path.is_file():
            raise FileNotFoundError(f"agent folder {folder}: {path.name} does not exist")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{meta_path}: not JSON ({exc})") from exc
    with warnings.catch_warnings():  # loading re-runs the setup that warns about n_steps
        warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored")
        model = DQN.load(model_path, device=device)
    return model, meta


def env_meta(config: EnvConfig) -> dict[str, Any]:
    """The environment settings as JSON (risk and cost settings included)."""
    return {
        "initial_equity": config.initial_equity,
        "sizes": list(config.sizes),
        "episode_bars": config.episode_bars,
        "reward_scale": config.reward_scale,
        "risk_penalty": config.risk_penalty,
        "risk": config.risk.model_dump(mode="json"),
        "costs": config.costs.model_dump(mode="json"),
    }


def env_config_from_meta(meta: dict[str, Any]) -> EnvConfig:
    """The environment an agent was trained in, from its meta.json ``env`` field."""
    try:
        env = meta["env"]
        return EnvConfig(
            initial_equity=float(env["initial_equity"]),
            sizes=tuple(float(s) for s in env["sizes"]),
            episode_bars=env["episode_bars"],
            reward_scale=float(env["reward_scale"]),
            risk_penalty=float(env["risk_penalty"]),
            risk=RiskSettings(**env["risk"]),
            costs=CostSettings(**env["costs"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"agent meta.json: field 'env' is unreadable ({exc})") from exc


def dqn_meta(config: DqnConfig) -> dict[str, Any]:
    out = asdict(config)
    out["net_arch"] = list(config.net_arch)
    return out
