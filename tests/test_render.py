def test_progress_off_a_terminal_draws_nothing_and_skips_rich_progress():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from cvtool import render\n"
        "with render.progress() as bar:\n"
        "    t = bar.add_task('loading', total=None)\n"
        "    bar.update(t, description='done'); bar.advance(t)\n"
        "print('rich.progress' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False" and out.stderr == ""
