"""``to_sb3``: a :class:`~tmstate.vector.env.TMNFVectorEnv` as a stable-baselines3 ``VecEnv``.

Same-step autoreset, ``terminal_observation`` and ``TimeLimit.truncated`` in the per-env
infos, as SB3's own ``DummyVecEnv`` gives them. stable-baselines3 is optional: the adapter
class is built on first use.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from tmstate.vector.env import TMNFVectorEnv



# --- stable-baselines3 -------------------------------------------------------------------


def to_sb3(vector_env: TMNFVectorEnv) -> Any:
    """``vector_env`` as a stable-baselines3 ``VecEnv`` (switched to same-step autoreset).

    SB3 resets a sub-env inside the step that ended its episode and expects the last
    observation in ``info["terminal_observation"]``; a lost game's episode ends with
    ``info["game_lost"]`` and ``TimeLimit.truncated`` set, so SB3 bootstraps its value.
    """
    return _sb3_class()(vector_env)


def _sb3_class() -> type:
    """Build the adapter class on first use: stable-baselines3 is an optional dependency."""
    global _SB3VecEnv
    if _SB3VecEnv is not None:
        return _SB3VecEnv
    from stable_baselines3.common.vec_env import VecEnv

    class SB3VecEnv(VecEnv):
        """A :class:`TMNFVectorEnv` behind stable-baselines3's ``VecEnv`` contract."""

        def __init__(self, vector_env: TMNFVectorEnv) -> None:
            vector_env.autoreset_mode = AutoresetMode.SAME_STEP
            vector_env.metadata = {**vector_env.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
            vector_env._autoreset[:] = False
            self.vector_env = vector_env
            super().__init__(vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space)
            self._actions: Any = None

        def reset(self) -> Any:
            seeds, options = self._seeds, self._options
            results = self.vector_env._map(
                lambda i: self.vector_env._reset_one(i, seeds[i], options[i] or None), range(self.num_envs)
            )
            self._reset_seeds()
            self._reset_options()
            self.reset_infos = [info for _, info in results]
            for i, (obs, _) in enumerate(results):
                self.vector_env._last_obs[i] = obs
            return self._stack([obs for obs, _ in results])

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions

        def step_wait(self) -> Any:
            results = self.vector_env.step_list(self._actions)
            rewards = np.zeros(self.num_envs, dtype=np.float32)
            dones = np.zeros(self.num_envs, dtype=np.bool_)
            infos = []
            observations = []
            for i, (obs, reward, terminated, truncated, info) in enumerate(results):
                rewards[i] = reward
                dones[i] = terminated or truncated
                info = dict(info)
                info["TimeLimit.truncated"] = bool(truncated and not terminated)
                if dones[i]:
                    info["terminal_observation"] = info.pop("final_obs")
                    self.reset_infos[i] = {k: v for k, v in info.items() if k != "final_info"}
                observations.append(obs)
                infos.append(info)
            return self._stack(observations), rewards, dones, infos

        def _stack(self, observations: list[Any]) -> Any:
            space = self.vector_env.single_observation_space
            if isinstance(space, gym.spaces.Dict):
                return {key: np.stack([obs[key] for obs in observations]) for key in space.spaces}
            return np.stack(observations)

        def close(self) -> None:
            self.vector_env.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [self.vector_env._env(i).get_wrapper_attr(attr_name) for i in self._get_indices(indices)]

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            for i in self._get_indices(indices):
                setattr(self.vector_env._env(i), attr_name, value)

        def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
            return [
                self.vector_env._env(i).get_wrapper_attr(method_name)(*method_args, **method_kwargs)
                for i in self._get_indices(indices)
            ]

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            from stable_baselines3.common import env_util

            return [env_util.is_wrapped(self.vector_env._env(i), wrapper_class) for i in self._get_indices(indices)]

        def get_images(self) -> list[Any]:
            return [self.vector_env._env(i).render() for i in range(self.num_envs)]

    _SB3VecEnv = SB3VecEnv
    return SB3VecEnv


_SB3VecEnv: type | None = None
