from migrate import __version__
from tests.helpers import run_cli


def test_version() -> None:
    result = run_cli("--version")
    assert result.code == 0
    assert result.stdout.strip() == f"kvmigrate {__version__}"


def test_help_lists_commands_and_exits_zero() -> None:
    result = run_cli("--help")
    assert result.code == 0
    assert "lab" in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("frobnicate")
    assert result.code == 2
    assert "frobnicate" in result.output


def test_lab_unknown_spec_lists_known_specs_and_exits_2() -> None:
    result = run_cli("lab", "install", "redis-6.0")
    assert result.code == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert "unknown server spec 'redis-6.0'" in lines[0]
    for spec in ("redis-7.0", "redis-8.0", "redis-8", "valkey-8.0", "valkey-8.1", "valkey-9"):
        assert spec in lines[0]


def test_start_up_loads_only_what_the_command_needs() -> None:
    """--version loads no command; the commands load no SSH or Lua parser until used
    (start-up time is a benchmark: benchmarks/bench_cli_start.py)."""
    import subprocess
    import sys

    probe = ("import sys; sys.argv = ['kvmigrate', '--version']; "
             "from migrate.cli.entry import main; main(); "
             "print(sorted(m for m in ('migrate.cli.main', 'typer', 'redis') "
             "if m in sys.modules)); "
             "import migrate.cli.main; "
             "print(sorted(m for m in ('paramiko', 'luaparser') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].startswith("kvmigrate ")
    assert out[1:] == ["[]", "[]"]
