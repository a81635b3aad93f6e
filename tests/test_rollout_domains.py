"""One rollout pool across domains: an episode that names its domain is played exactly as
in a run whose environment is built in that domain (same first frame, same outcome)."""

from __future__ import annotations

import pytest

pytest.importorskip("mujoco")


def test_an_episode_names_its_domain() -> None:
    from realgap.policy.episodes import EnvSpec, EpisodeSpec, run_episodes

    sim = EnvSpec("reach-mug", image_size=32, cameras=("head",), max_steps=3,
                  proxy_shadows="off")
    mild = EnvSpec("reach-mug", image_size=32, cameras=("head",), max_steps=3,
                   proxy_shadows="off", domain="real-proxy-mild")
    mixed = run_episodes("expert", sim, [EpisodeSpec(7), EpisodeSpec(7, domain="real-proxy-mild"),
                                         EpisodeSpec(7)], workers=1)
    (direct,) = run_episodes("expert", mild, [EpisodeSpec(7)], workers=1)
    assert mixed[1].init_digest == direct.init_digest
    assert mixed[1].ret == direct.ret and mixed[1].length == direct.length
    assert mixed[0].init_digest == mixed[2].init_digest != mixed[1].init_digest
