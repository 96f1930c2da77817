"""Rule edits behind `/guideline-rules`: each yields rules that pass validation."""

from __future__ import annotations

import pytest

from promptwarden import rule_edits
from promptwarden.screening.decision import Severity, Verdict
from promptwarden.screening.engine import Screener
from promptwarden.screening.rules import GuildRules


def test_rule_edits_round_trip_through_validation() -> None:
    rules = rule_edits.add_term(GuildRules(), "  Wombat*  ", "custom", "HIGH")
    assert [(t.term, t.severity) for t in rules.custom_terms] == [("Wombat*", Severity.HIGH)]
    assert Screener(rules, model=None).screen("two wombats").verdict is Verdict.BLOCK
    # Re-adding files the term again instead of doubling it; allowing it removes it.
    rules = rule_edits.add_term(rules, "wombat*", "violence", "medium")
    assert [(t.term, t.category) for t in rules.custom_terms] == [("wombat*", "violence")]
    rules = rule_edits.allow_term(rules, "wombat*")
    assert rules.custom_terms == () and rules.allow_terms == ("wombat*",)
    rules, found = rule_edits.remove_term(rules, "WOMBAT*")
    assert found and rules == GuildRules()
    assert rule_edits.remove_term(rules, "nothing") == (rules, False)
    with pytest.raises(ValueError, match="unknown action 'ban'"):
        rule_edits.set_action(rules, "violence", "ban")


def test_members_see_only_enforced_categories() -> None:
    rules = rule_edits.set_action(GuildRules(), "drugs", "off")
    shown = [c for c, _ in rule_edits.enforced_guidelines(rules)]
    assert "drugs" not in shown and "custom" not in shown and "sexual" in shown
    rules = rule_edits.add_term(rules, "wombat", "custom", "high")
    assert "custom" in [c for c, _ in rule_edits.enforced_guidelines(rules)]
