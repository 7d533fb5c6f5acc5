"""Assembling streamed tool-call pieces into whole calls."""

from __future__ import annotations

from dataclasses import dataclass

from worker.backends.base import ToolCallPiece


@dataclass(slots=True)
class AssembledCall:
    id: str
    name: str
    arguments: str


def assemble(pieces: list[ToolCallPiece], step: int) -> list[AssembledCall]:
    """Whole calls, in the model's order: pieces of one call share an
    ``index``; its id and name come with the first, the arguments are the
    concatenation. A call the model gave no id gets one (``s<step>c<index>``)
    so its result can still be matched; one without a name is dropped."""
    by_index: dict[int, AssembledCall] = {}
    for piece in pieces:
        call = by_index.get(piece.index)
        if call is None:
            call = by_index[piece.index] = AssembledCall("", "", "")
        if piece.id and not call.id:
            call.id = piece.id
        if piece.name and not call.name:
            call.name = piece.name
        call.arguments += piece.arguments
    out: list[AssembledCall] = []
    for index in sorted(by_index):
        call = by_index[index]
        if not call.name:
            continue
        call.id = call.id or f"s{step}c{index}"
        out.append(call)
    return out
