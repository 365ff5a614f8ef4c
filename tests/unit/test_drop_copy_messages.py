"""The copy's content, the trade capture request parser and answers, entitlement routing,
and reading a member's resume point back from a quickfix FileStore."""

from __future__ import annotations

from pathlib import Path

import pytest
from drop_copy_support import T0, HandSequencer, fields, order, two_member_config

from drop_copy.entitlement import Entitlements, Member, entitlements_from_config
from drop_copy.messages import copies, utc_date
from drop_copy.requests import TradeRequestError, parse_trade_request, parse_utc_timestamp, trade_reports
from drop_copy.store import Watermark, last_copy
from venue.events import Fill
from venue.fix.reports import Renderer
from venue.types import Side


def test_a_fill_copy_carries_what_a_clearer_reconciles_on(tmp_path: Path) -> None:
    cfg = two_member_config(tmp_path)
    seqr = HandSequencer(cfg)
    seqr.submit(order("FIRM1", "b1", Side.BUY, 3, 200_001))
    seqr.submit(order("FIRM2", "s1", Side.SELL, 2, 200_001))
    out = list(copies(seqr.events, Renderer({i.symbol: i for i in cfg.instruments})))
    assert [c.exec_type.value for c in out] == ["0", "0", "F", "F"]
    taker, maker = (fields(c.raw) for c in out[2:])
    fill = next(ev for ev in seqr.events if type(ev) is Fill)
    assert taker[17] == str(fill.taker_exec_id) and maker[17] == str(fill.maker_exec_id)
    assert taker[1003] == maker[1003] == str(fill.trade_id)
    assert (taker[1], taker[448], taker[452], taker[447]) == ("FIRM2-A", "FIRM2", "1", "D")
    assert (maker[1], maker[448]) == ("FIRM1-A", "FIRM1")
    assert taker[797] == "Y" and taker[7910] == "2" and taker[35] == "8"
    assert (taker[31], taker[32], taker[39], maker[39], maker[151]) == ("100000.5", "2", "2", "1", "1")
    assert taker[60] == "20261118-11:06:40.000002", "TransactTime in UTC with microseconds"


def test_status_answers_are_not_copied(tmp_path: Path) -> None:
    from venue.commands import QueryOrder

    cfg = two_member_config(tmp_path)
    seqr = HandSequencer(cfg)
    seqr.submit(order("FIRM1", "b1", Side.BUY, 1, 200_000))
    seqr.submit(QueryOrder(session="FIRM1", firm="FIRM1", symbol="BTC-PERP", side=Side.BUY, cl_ord_id="b1"))
    assert [c.exec_type.value for c in copies(seqr.events, Renderer({i.symbol: i for i in cfg.instruments}))] == ["0"]


def test_entitlement_by_firm_and_by_account_and_nothing_else() -> None:
    ent = Entitlements([
        Member(id="A", sender_comp_id="A", firms=frozenset({"FIRM1"})),
        Member(id="B", sender_comp_id="B", accounts=frozenset({"FIRM2-X"})),
    ])
    assert [m.id for m in ent.members_for("FIRM1", "FIRM1-NEW")] == ["A"], "a firm entitlement covers accounts added later"
    assert [m.id for m in ent.members_for("FIRM2", "FIRM2-X")] == ["B"]
    assert ent.members_for("FIRM2", "FIRM2-A") == ()
    assert ent.ids_for("FIRM1", "FIRM1-A") == frozenset({"A"})
    with pytest.raises(ValueError, match="share SenderCompID"):
        Entitlements([Member(id="A", sender_comp_id="X"), Member(id="B", sender_comp_id="X")])


def test_config_members_have_hashed_passwords_and_options(tmp_path: Path) -> None:
    cfg = two_member_config(tmp_path, include_rejects=True, max_buffered=7)
    ent = entitlements_from_config(cfg)
    c2 = ent.by_comp_id["CLEARER2"]
    assert c2.firms == frozenset({"FIRM2"}) and c2.include_rejects and c2.max_buffered == 7
    assert c2.password_hash.startswith("scrypt$") and "clearer2-secret" not in c2.password_hash


AD = "8=FIX.4.4\x019=0\x0135=AD\x0134=2\x01568=R1\x01569={t}\x01{extra}10=000\x01"


@pytest.mark.parametrize(("request_type", "extra", "result", "text"), [
    ("2", "", "8", "TradeRequestType"),
    ("4", "", "8", "TradeRequestType"),
    ("0", "263=1\x01", "99", "only snapshots"),
    ("0", "580=1\x0175=2026-11-18\x01", "99", "YYYYMMDD"),
    ("0", "580=1\x0160=yesterday\x01", "99", "UTC timestamp"),
    ("0", "580=2\x0160=20261118-10:00:00\x0160=20261118-09:00:00\x01", "99", "ends before it starts"),
    ("0", "580=3\x0160=20261118-10:00:00\x0160=20261118-11:00:00\x0160=20261118-12:00:00\x01", "99", "at most two"),
])
def test_trade_requests_the_venue_does_not_serve_get_a_rejecting_ack(request_type: str, extra: str, result: str, text: str) -> None:
    with pytest.raises(TradeRequestError) as err:
        parse_trade_request(AD.format(t=request_type, extra=extra))
    ack = fields(err.value.ack)
    assert (ack[35], ack[568], ack[749], ack[750], ack[748]) == ("AQ", "R1", result, "2", "0")
    assert text in ack[58]


def test_a_request_without_an_id_is_refused() -> None:
    with pytest.raises(TradeRequestError, match="568"):
        parse_trade_request("8=FIX.4.4\x019=0\x0135=AD\x01569=0\x0110=000\x01")


def test_trade_reports_answer_with_the_members_sides_only(tmp_path: Path) -> None:
    cfg = two_member_config(tmp_path)
    seqr = HandSequencer(cfg)
    seqr.submit(order("FIRM1", "b1", Side.BUY, 3, 200_000), order("FIRM2", "s1", Side.SELL, 2, 200_000))
    seqr.submit(order("FIRM2", "b2", Side.BUY, 1, 200_002, symbol="ETH-PERP"), order("FIRM1", "s2", Side.SELL, 1, 200_002, symbol="ETH-PERP"))
    ent = entitlements_from_config(cfg)
    batches = [(ev.seq, [ev]) for ev in seqr.events]
    renderer = Renderer({i.symbol: i for i in cfg.instruments})
    day = utc_date(T0)
    req = parse_trade_request(AD.format(t="1", extra=f"580=1\x0175={day}\x01"))
    out = [fields(m) for m in trade_reports(req, ent.by_comp_id["CLEARER2"], batches, renderer)]
    assert (out[0][35], out[0][748], out[0][750]) == ("AQ", "2", "0")
    assert [(m[35], m[571], m[1], m[54], m[912]) for m in out[1:]] == [("AE", "1-S", "FIRM2-A", "2", "N"), ("AE", "2-B", "FIRM2-A", "1", "Y")]
    both = [fields(m) for m in trade_reports(req, ent.by_comp_id["CLEARER1"], batches, renderer)]
    assert both[0][748] == "4" and [m[571] for m in both[1:]] == ["1-S", "1-B", "2-S", "2-B"]
    eth = parse_trade_request(AD.format(t="1", extra="55=ETH-PERP\x01"))
    assert [fields(m).get(571) for m in trade_reports(eth, ent.by_comp_id["CLEARER2"], batches, renderer)] == [None, "2-B"]
    other_day = parse_trade_request(AD.format(t="1", extra="580=1\x0175=20200101\x01"))
    none = [fields(m) for m in trade_reports(other_day, ent.by_comp_id["CLEARER1"], batches, renderer)]
    assert [(m[35], m[748]) for m in none] == [("AQ", "0")]


def test_timestamp_parsing() -> None:
    assert parse_utc_timestamp("20261118-11:06:40") == T0
    assert parse_utc_timestamp("20261118-11:06:40.5") == T0 + 500_000
    assert parse_utc_timestamp("20261118-11:06:40.000002") == T0 + 2
    with pytest.raises(ValueError):
        parse_utc_timestamp("20261118-11:06:40.x")


def test_the_resume_point_is_the_newest_copy_in_the_store(tmp_path: Path) -> None:
    prefix = tmp_path / "FIX.4.4-VENUE-CLEARER1"
    msgs = [
        "8=FIX.4.4\x019=10\x0135=8\x0134=1\x0117=5\x017910=3\x01797=Y\x0110=000\x01",
        "8=FIX.4.4\x019=10\x0135=8\x0134=2\x0117=9\x017910=4\x01797=Y\x0110=000\x01",
        "8=FIX.4.4\x019=10\x0135=AE\x0134=3\x0117=11\x017910=6\x01797=Y\x0110=000\x01",
        "8=FIX.4.4\x019=10\x0135=j\x0134=4\x0110=000\x01",
    ]
    body, header, offset = b"", "", 0
    for i, m in enumerate(msgs, 1):
        body += m.encode()
        header += f"{i},{offset},{len(m)} "
        offset += len(m)
    prefix.with_name(prefix.name + ".body").write_bytes(body)
    prefix.with_name(prefix.name + ".header").write_text(header + "5,99")  # a torn last entry
    assert last_copy(tmp_path, "FIX.4.4", "VENUE", "CLEARER1") == Watermark(4, 9)
    assert last_copy(tmp_path, "FIX.4.4", "VENUE", "CLEARER2") is None
