"""Every action the code can write to the audit log has a sentence in the patient's history.

The test reads the source: each call of ``record``, ``_audit`` or ``audit*`` names its action as a
string (or a few f-strings and conditionals, expanded below); a new action without a sentence
in ``portal.history.SENTENCES`` fails here rather than showing up raw on the page.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from mss.audit import AuditEvent
from mss.policy.agenda import AgendaAction
from portal.history import SENTENCES, describe, where_from

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("mss", "portal", "dmp_bridge")
# f-strings of actions, with every value they can take.
TEMPLATES = {
    "agenda.appointment_{change.action.value}": [
        f"agenda.appointment_{a.value}" for a in AgendaAction if a is not AgendaAction.UNCHANGED
    ],
    "message.{answer.kind}": ["message.mdn", "message.error_email"],
}


def _is_audit_call(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in ("record", "_audit") or name.startswith("audit")


def _action_argument(node: ast.Call) -> ast.expr | None:
    for keyword in node.keywords:
        if keyword.arg == "action":
            return keyword.value
    return node.args[1] if len(node.args) > 1 else None


def _values(expr: ast.expr) -> list[str] | None:
    """The strings ``expr`` can be, or None when the test cannot tell."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return [expr.value]
    if isinstance(expr, ast.IfExp):
        body, orelse = _values(expr.body), _values(expr.orelse)
        return body + orelse if body is not None and orelse is not None else None
    if isinstance(expr, ast.JoinedStr):
        return TEMPLATES.get(ast.unparse(expr)[2:-1])
    return None


def written_actions() -> tuple[set[str], list[str]]:
    """Every action an audit call of the code writes, and the calls the test cannot read."""
    actions: set[str] = set()
    unread: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "audit.py" and path.parent.name == "mss":
                continue  # the writer itself
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for function in ast.walk(tree):
                if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(function):
                    if not isinstance(node, ast.Call) or not _is_audit_call(node):
                        continue
                    argument = _action_argument(node)
                    if argument is None:
                        continue
                    values = _values(argument)
                    if values is not None:
                        actions.update(values)
                    elif not (
                        isinstance(argument, ast.Name)
                        and _is_audit_call(ast.Call(ast.Name(function.name), [], []))
                    ):  # a wrapper passing its own action on is read at its callers
                        unread.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return actions, unread


def test_every_written_action_has_a_sentence() -> None:
    actions, unread = written_actions()
    assert unread == [], f"audit calls whose action this test cannot read: {unread}"
    assert len(actions) > 40  # the scan found the calls
    missing = sorted(actions - SENTENCES.keys())
    assert missing == [], f"actions without a sentence in portal.history.SENTENCES: {missing}"


def _event(action: str, actor_kind: str, actor: str, source: str, **detail: object) -> AuditEvent:
    return AuditEvent(
        at=dt.datetime(2026, 3, 12, 14, 27, tzinfo=dt.UTC),
        action=action,
        actor_kind=actor_kind,
        actor=actor,
        source=source,
        detail=detail,
    )


@pytest.mark.parametrize(
    ("event", "who", "where"),
    [
        (
            _event("message.sent", "patient", "285037505612306@patient.mss.localhost", "portal"),
            "une personne (vous-même)",
            "depuis l'espace patient",
        ),
        (
            _event("agenda.appointment_answered", "patient", "285037505612306", "portal"),
            "une personne (vous-même)",
            "depuis l'espace patient",
        ),
        (
            _event("message.received", "professional", "convocations@mss.localhost", "submission"),
            "un professionnel de santé",
            "depuis la messagerie sécurisée du professionnel",
        ),
        (
            _event("dmp_filing", "system", "mss.localhost", "mss"),
            "le service de messagerie santé",
            "",
        ),
        (
            _event("document_read", "professional", "810000000001", "10.1.2.3", actor_name="Dr A"),
            "Dr A (professionnel de santé)",
            "depuis l'adresse 10.1.2.3",
        ),
    ],
)
def test_no_internal_name_reaches_the_page(event: AuditEvent, who: str, where: str) -> None:
    line = describe(event)
    assert (line.who, line.where) == (who, where)
    shown = " ".join((line.what, line.who, line.where, line.detail))
    for internal in ("@", "285037505612306", "mss.localhost", "submission", "portal", "_"):
        assert internal not in shown
    assert line.when == "12/03/2026 à 15 h 27"


def test_an_unknown_action_is_not_shown_raw() -> None:
    line = describe(_event("some.new_action", "system", "mss", ""))
    assert "some" not in line.what and "_" not in line.what
    assert where_from("retention") == ""


def test_an_address_quoted_by_a_refusal_becomes_a_name() -> None:
    sentence = "La conversation avec <jean.dupont@mss.localhost> a été clôturée."
    event = _event("message_refused", "patient", "2850", "10.0.0.1", reason=sentence)
    known = {"jean.dupont@mss.localhost": ("Dr Jean Dupont", "médecin")}
    assert describe(event, known).detail == "La conversation avec Dr Jean Dupont a été clôturée."
    assert describe(event).detail == "La conversation avec votre correspondant a été clôturée."
