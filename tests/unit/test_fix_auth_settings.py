"""Credentials (scrypt), the reference database seeded from YAML, and the quickfix
settings generated from config."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import quickfix as fix
import yaml

from venue.config import DEFAULT_CONFIG, load_config
from venue.core import new_core
from venue.fix.auth import hash_password, verify_password
from venue.fix.settings import DATA_DICTIONARY, acceptor_settings, to_quickfix
from venue.limits import rule_key, rule_values
from venue.operator import LimitSet, SetLimit
from venue.refdata import open_reference, save_limits


def test_password_hash_is_salted_and_verifies() -> None:
    a, b = hash_password("s3cret", n=2**10), hash_password("s3cret", n=2**10)
    assert a != b and "s3cret" not in a
    assert verify_password("s3cret", a) and not verify_password("s3cre", a)
    for broken in ("", "scrypt$1$2", "md5$1$1$1$00$00", "scrypt$x$8$1$00$00", a.replace("$8$", "$0$")):
        assert not verify_password("s3cret", broken)


def _config(tmp_path: Path, edit: object = None) -> Path:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["venue"]["var_dir"] = str(tmp_path / "var")
    data["firms"][0]["sessions"].append({"sender_comp_id": "CERT1", "settings": {"CheckLatency": "N"}})
    if callable(edit):
        edit(data)
    path = tmp_path / "venue.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_reference_database_is_seeded_once_and_never_rereads_yaml(tmp_path: Path) -> None:
    path = _config(tmp_path)
    ref = open_reference(load_config(path))
    assert ref.accounts() == {"FIRM1-A": "FIRM1", "FIRM2-A": "FIRM2"}
    s = {r.sender_comp_id: r for r in ref.sessions}
    assert verify_password("firm1-secret", s["FIRM1"].password_hash) and s["CERT1"].password_hash == ""
    assert s["CERT1"].settings == {"CheckLatency": "N"}
    assert [m.id for m in ref.clearing_members] == ["CLEARER1"] and ref.clearing_members[0].firms == ("FIRM1", "FIRM2")
    assert {i.symbol for i in ref.instruments} == {i.symbol for i in load_config(path).instruments}
    assert ref.instruments == sorted(load_config(path).instruments, key=lambda i: i.symbol)
    db = (tmp_path / "var" / "reference.db").read_bytes()
    assert b"firm1-secret" not in db
    # the YAML changes; the database, already seeded, is what the venue reads
    _config(tmp_path, lambda d: d["firms"][0].update(accounts=["FIRM1-A", "FIRM1-NEW"]))
    assert open_reference(load_config(path)).accounts() == ref.accounts()


def test_limits_are_seeded_as_commands_and_rewritten_from_the_venues_rules(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path))
    ref = open_reference(cfg)
    core = new_core(cfg, ref)
    assert core.risk.limits.rules == {}  # the core starts bare: its limits come through the journal
    for cmd in ref.limits:
        assert [type(e) for e in core.apply(1, 0, cmd)] == [LimitSet]
    assert core.risk.limits.rules == {rule_key(r): rule_values(r) for r in cfg.risk.limits}
    core.apply(2, 0, SetLimit(name="max_order_qty", value=Decimal(7), firm="FIRM1"))
    core.apply(3, 0, SetLimit(name="im_rate", value=None, symbol="BTC-26DEC26-100000-C"))
    save_limits(cfg, core.risk.limits.rules)
    replayed = new_core(cfg, reread := open_reference(cfg))
    for cmd in reread.limits:
        replayed.apply(1, 0, cmd)
    assert replayed.risk.limits.rules == core.risk.limits.rules
    assert SetLimit(name="max_order_qty", value=Decimal(7), firm="FIRM1") in reread.limits


def test_settings_from_config_with_per_session_overrides(tmp_path: Path) -> None:
    ref = open_reference(load_config(_config(tmp_path)))
    defaults, sessions = acceptor_settings(comp_id="VENUE", host="127.0.0.1", port=9999, state_dir=tmp_path / "fix",
                                           sessions=[(r.sender_comp_id, r.settings) for r in ref.sessions])
    assert defaults["DataDictionary"] == str(DATA_DICTIONARY) and defaults["FileStorePath"] == str(tmp_path / "fix" / "store")
    assert defaults["AllowedRemoteAddresses"] == "127.0.0.1" and defaults["NonStopSession"] == "Y"
    assert sessions["CERT1"] == {"TargetCompID": "CERT1", "CheckLatency": "N"}
    qf = to_quickfix(defaults, sessions)
    sid = fix.SessionID("FIX.4.4", "VENUE", "CERT1")
    assert qf.get(sid).getString("CheckLatency") == "N"
    assert qf.get(fix.SessionID("FIX.4.4", "VENUE", "FIRM1")).getString("CheckLatency") == "Y"
    assert "AllowedRemoteAddresses" not in acceptor_settings(comp_id="V", host="0.0.0.0", port=1, state_dir=tmp_path, sessions=[])[0]
