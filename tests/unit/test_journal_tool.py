"""`venue journal inspect | verify | replay` on a journal written for the demo config."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from venue.cli import main
from venue.commands import AdjustCollateral, CancelOrder, Command, NewOrder
from venue.config import DEFAULT_CONFIG
from venue.journal import Journal, segment_paths
from venue.types import OrdType, Side

T0 = 1_790_000_000_000_000  # 2026-09-21T14:13:20Z


def order(cl: str, account: str, side: Side, qty: int, price: int) -> NewOrder:
    firm = account.split("-")[0]
    return NewOrder(session=firm, firm=firm, account=account, cl_ord_id=cl, symbol="BTC-PERP", side=side, ord_type=OrdType.LIMIT,
                    qty=qty, price=price)


COMMANDS: list[Command] = [
    AdjustCollateral(account="FIRM1-A", amount=Decimal(10_000_000)),
    AdjustCollateral(account="FIRM2-A", amount=Decimal(10_000_000)),
    order("b1", "FIRM1-A", Side.BUY, 5, 199_990),
    order("b2", "FIRM1-A", Side.BUY, 3, 199_980),
    order("s1", "FIRM2-A", Side.SELL, 4, 200_010),
    order("s2", "FIRM2-A", Side.SELL, 2, 199_990),  # trades 2 with b1
    CancelOrder(session="FIRM1", firm="FIRM1", cl_ord_id="x1", orig_cl_ord_id="b2"),
]


@pytest.fixture
def venue_config(tmp_path: Path) -> Path:
    """The demo config with its var dir in tmp_path, and a journal of COMMANDS there."""
    text = DEFAULT_CONFIG.read_text().replace("var_dir: var", f"var_dir: {tmp_path / 'var'}")
    cfg = tmp_path / "config" / "venue.yaml"
    cfg.parent.mkdir()
    cfg.write_text(text)
    j = Journal.open(tmp_path / "var" / "journal")
    for i, cmd in enumerate(COMMANDS, 1):
        j.append(i, T0 + i * 1_000_000, cmd)
    j.close()
    return cfg


def test_inspect_counts_and_range(venue_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "inspect", "--config", str(venue_config), "--records", "--from", "6"]) == 0
    out = capsys.readouterr().out
    assert "7 records" in out and "seq   1 .. 7" in out
    assert "2026-09-21T" in out and "NewOrder" in out
    counts = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("    ") and line.split()[0].isalpha()}
    assert counts == {"NewOrder": "4", "AdjustCollateral": "2", "CancelOrder": "1"}
    listed = [line for line in out.splitlines() if line.lstrip()[:1].isdigit() and "[" in line]
    assert [line.split()[0] for line in listed] == ["6", "7"]


def test_verify_clean_then_corrupt(venue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "verify", "--config", str(venue_config)]) == 0
    assert "every checksum holds" in capsys.readouterr().out
    seg = segment_paths(tmp_path / "var" / "journal")[0][1]
    data = bytearray(seg.read_bytes())
    data[-60] ^= 0x10
    seg.write_bytes(bytes(data))
    assert main(["journal", "verify", "--dir", str(tmp_path / "var" / "journal")]) == 1
    err = capsys.readouterr().err
    assert "checksum fails" in err


def test_verify_reports_a_torn_tail_without_cutting_it(venue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seg = segment_paths(tmp_path / "var" / "journal")[0][1]
    size = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(b"\x30\x00\x00")
    assert main(["journal", "verify", "--config", str(venue_config)]) == 1
    assert "torn tail (the next start cuts it)" in capsys.readouterr().err
    assert seg.stat().st_size == size + 3


def test_replay_to_a_seq_prints_the_book(venue_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "replay", "--config", str(venue_config), "--to-seq", "5"]) == 0
    out = capsys.readouterr().out
    assert "replayed 5 records" in out
    assert "BTC-PERP: OPEN, last 200000, 3 resting" in out
    assert main(["journal", "replay", "--config", str(venue_config)]) == 0
    out = capsys.readouterr().out
    assert "BTC-PERP: OPEN, last 199990, 2 resting" in out  # b1 (3 left) and s1; b2 canceled
    assert "FIRM1-A" in out and "+2" in out and "-2" in out


def test_replay_to_a_time(venue_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from venue.journal_tool import iso

    assert main(["journal", "replay", "--config", str(venue_config), "--to-time", iso(T0 + 3 * 1_000_000)]) == 0
    assert "replayed 3 records" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["--to-time", "yesterday"], "expected an ISO 8601 time"),
    (["--to-seq", "0"], "expected a number >= 1"),
    (["--to-seq", "ten"], "expected a whole number"),
])
def test_bad_arguments_get_a_clear_error(venue_config: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["journal", "replay", "--config", str(venue_config), *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_journal_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "verify", "--dir", str(tmp_path / "nope")]) == 1
    assert "no journal directory" in capsys.readouterr().err
