"""Rise/fall hysteresis of the agent's listener check."""

from __future__ import annotations

from l3dist.amphora_agent.haproxy import parse_stats
from l3dist.amphora_agent.listener_check import Hysteresis


def run(state: Hysteresis, results: list[bool]) -> list[bool]:
    out = []
    for ok in results:
        state.update(ok)
        out.append(state.healthy)
    return out


def test_starts_unhealthy_until_rise_successes() -> None:
    assert run(Hysteresis(rise=3, fall=2), [True, True, True, True]) == [False, False, True, True]


def test_one_failure_in_five_never_withdraws() -> None:
    state = Hysteresis(rise=3, fall=2)
    run(state, [True] * 3)
    assert all(run(state, [True, True, True, True, False] * 20))


def test_fall_failures_in_a_row_withdraw_and_rise_successes_restore() -> None:
    state = Hysteresis(rise=3, fall=2)
    run(state, [True] * 3)
    assert run(state, [False, False]) == [True, False]
    # flapping while down does not announce
    assert run(state, [True, False, True, True, False]) == [False] * 5
    assert run(state, [True, True, True]) == [False, False, True]


SHOW_STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,status
vip_http,FRONTEND,,,0,1,8000,3,0,0,0,0,0,,OPEN
be,m1,0,0,0,1,,3,0,0,,0,,0,UP
be,BACKEND,0,0,0,1,800,3,0,0,0,0,,0,UP
"""


def serving(show_stat: str) -> bool:
    stats = parse_stats(show_stat)
    return stats is not None and stats.serving


def test_frontends_open_from_show_stat() -> None:
    assert serving(SHOW_STAT)
    assert not serving(SHOW_STAT.replace(",OPEN", ",STOP"))
    assert not serving("")
    assert not serving("Unknown command\n")
    assert not serving(SHOW_STAT.splitlines()[0])  # no frontend at all


INFO_AND_STAT = """Name: HAProxy
Version: 2.6.12-1+deb12u3
Pid: 20169
Uptime_sec: 0

# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,status
abc,FRONTEND,,,3,4,9985,12,164,144,0,0,2,,OPEN
abc,BACKEND,0,0,0,1,800,3,0,0,0,0,,0,UP
"""


def test_counters_and_worker_from_show_info_and_show_stat() -> None:
    stats = parse_stats(INFO_AND_STAT)
    assert stats is not None and stats.serving
    assert stats.worker == 20169
    assert stats.counters == {"abc": {"active_connections": 3, "total_connections": 12,
                                      "bytes_in": 164, "bytes_out": 144,
                                      "request_errors": 2}}  # fmt: skip
    # show stat alone: the counters without a worker
    alone = parse_stats(SHOW_STAT)
    assert alone is not None and alone.worker is None
    assert alone.counters["vip_http"]["total_connections"] == 3
