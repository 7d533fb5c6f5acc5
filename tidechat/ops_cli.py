"""The operator commands' command lines (``replay``, ``turn``, ``streams``,
``migrate``, ``dead``, ``audit``), registered by ``tidechat/cli.py``; what
each does is in its own module, run through ``tidechat/ops.py``."""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``replay``, ``turn``, ``streams``, ``dead`` and ``migrate``: the operator
    commands (tidechat/ops.py)."""
    from tidechat import dead, migrate, queues, replay, timeline, turn_info
    from tidechat.ops import Command, run

    def command(parser: argparse.ArgumentParser, impl: Command) -> None:
        parser.set_defaults(func=lambda args: run(impl, args))

    rp = sub.add_parser("replay", help="replay a session's events or a recorded turn")
    rsub = rp.add_subparsers(dest="replay_command", required=True)

    rs = rsub.add_parser(
        "session",
        help="print a session stream's timeline",
        description="One line per event: local time, +seconds since the previous event, "
        "event id, type, turn (short id), size of the event JSON, and its text.",
    )
    rs.add_argument("session_id", metavar="SID")
    rs.add_argument(
        "--from",
        dest="from_id",
        metavar="EVENT_ID",
        help="start at this event id (or Unix ms time); earlier events are skipped",
    )
    rs.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    rs.add_argument("--full", action="store_true", help="do not cut long texts")
    rs.add_argument("--json", action="store_true", help="one frame per line, as clients get it")
    command(rs, timeline.replay_session)

    rt = rsub.add_parser(
        "turn",
        help="re-run a recorded turn on the current workers and compare",
        description="Finds the turn on the prompt (or dead-letter) streams, re-runs its prompt "
        "in a throw-away copy of the conversation (the user's conversation is not touched), "
        "waits for the reply and prints it beside the recorded one.",
    )
    _turn_id(rt)
    rt.add_argument("--model", help="replay on this model instead of the recorded one")
    rt.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the reply (default 120)"
    )
    rt.add_argument(
        "--keep",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="how long the replay's conversation copy and session live (default 3600)",
    )
    rt.add_argument(
        "--side-by-side", action="store_true", help="print the two texts in two columns"
    )
    command(rt, replay.replay_turn)

    tn = sub.add_parser(
        "turn",
        help="one turn: its conversation, session, where it is now, and how to look further",
        description="TURN_ID is what a reply's menu in the web client copies (Copy turn ID).",
    )
    _turn_id(tn)
    _json(tn)
    command(tn, turn_info.show_turn)

    st = sub.add_parser(
        "streams",
        help="each pool's queue, pending turns per worker, live workers, dead letters",
    )
    _json(st)
    st.add_argument(
        "--dead", type=int, default=3, metavar="N", help="newest dead letters shown per pool"
    )
    command(st, queues.streams)

    mg = sub.add_parser(
        "migrate",
        help="bring the data in Redis to this release's layout (stop gateways and workers first)",
        description="Converts the previous release's data in batches, with progress; safe to "
        "run again after a crash (it resumes) or when there is nothing to do.",
    )
    command(mg, migrate.migrate)

    dp = sub.add_parser("dead", help="list or retry turns that failed past the retry limit")
    dsub = dp.add_subparsers(dest="dead_command", required=True)
    dl = dsub.add_parser("list", help="the dead letters, newest first")
    dl.add_argument("--pool", help="only this pool")
    _json(dl)
    command(dl, dead.dead_list)
    dr = dsub.add_parser("retry", help="queue a dead letter's turn again")
    dr.add_argument("entry_id", metavar="ID", help="the dead letter's entry id (dead list)")
    dr.add_argument("--pool", help="the pool it is in (default: look in every pool)")
    command(dr, dead.dead_retry)

    from tidechat import audit

    audit.add_parser(sub, command)


def _turn_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("turn_id", metavar="TURN_ID", help="a turn id (or its first 6+ characters)")


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
