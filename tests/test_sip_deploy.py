"""deploy/sip/: the inbound trunk and dispatch rule `lk sip inbound create` and `lk sip dispatch
create` take are the SIP API's own request messages (livekit-protocol's, which reject a field
they do not know), and the rule sends every caller to a room of their own with this agent."""

import json
import re
from pathlib import Path

import pytest
from google.protobuf import json_format
from livekit import api

from configs import load_settings

SIP = Path(__file__).resolve().parents[1] / "deploy" / "sip"


def parse(name: str, message):
    return json_format.Parse((SIP / name).read_text(), message)  # ParseError on an unknown field


def test_the_checks_refuse_a_misspelt_field():
    with pytest.raises(json_format.ParseError):
        json_format.Parse(json.dumps({"trunk": {"number": ["+15105550100"]}}), api.CreateSIPInboundTrunkRequest())


def test_inbound_trunk_names_its_numbers():
    trunk = parse("inbound-trunk.json", api.CreateSIPInboundTrunkRequest()).trunk
    assert trunk.name and trunk.numbers
    assert all(re.fullmatch(r"\+[1-9]\d{6,14}", n) for n in trunk.numbers)  # E.164


@pytest.mark.parametrize("profile", ["cpu", "gpu-24gb"])
def test_dispatch_rule_gives_each_caller_a_room_and_this_agent(profile):
    rule = parse("dispatch-rule.json", api.CreateSIPDispatchRuleRequest()).dispatch_rule
    assert rule.rule.WhichOneof("rule") == "dispatch_rule_individual"  # one room, one job per call
    assert rule.rule.dispatch_rule_individual.room_prefix
    assert [a.agent_name for a in rule.room_config.agents] == [load_settings(profile).worker.agent_name]
