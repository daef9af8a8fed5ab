"""`galaxygen.runner`: the resume rule, failures collected per item, steps, serial and process pool."""

from __future__ import annotations

import pytest

from galaxygen import runner
from galaxygen.errors import GalaxygenError
from galaxygen.outputs import written_by


def write(path, text):
    path.write_text(text)
    return text


def fail(kind):
    raise {"config": GalaxygenError("bad input"), "os": OSError("disk full"), "bug": AssertionError("a bug")}[kind]


def stepped(n, report):
    for i in range(n):
        report(f"step {i}")
    return n


def test_resume_skips_complete_outputs_and_records_what_it_writes(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    tasks = [runner.Task(n, write, (tmp_path / f"{n}.txt", n), output=tmp_path / f"{n}.txt") for n in "ab"]
    plan = runner.plan(tasks, command="test")
    assert [t.name for t in plan.todo] == ["b"] and [t.name for t in plan.skipped] == ["a"]
    report = runner.run(plan)
    assert report.results == {"b": "b"} and report.skipped == ["a"] and not report.failed
    assert written_by(tmp_path) == {"b.txt": "test"}
    # overwrite: only outputs this command wrote may be replaced, all checked before any work
    with pytest.raises(GalaxygenError, match="a.txt not written there by galaxygen test"):
        runner.plan(tasks, command="test", overwrite=True)
    assert len(runner.plan(tasks[1:], command="test", overwrite=True).todo) == 1


def test_check_may_refuse_an_existing_output(tmp_path):
    (tmp_path / "a.txt").write_text("other settings")

    def check(task):
        raise GalaxygenError(f"{task.output}: exists with different settings")

    with pytest.raises(GalaxygenError, match="different settings"):
        runner.plan([runner.Task("a", write, (tmp_path / "a.txt", "a"), output=tmp_path / "a.txt")], check=check)


def test_failures_of_items_are_collected_and_bugs_stop_the_run():
    tasks = [runner.Task("config", fail, ("config",)), runner.Task("os", fail, ("os",)),
             runner.Task("fine", abs, (0,))]
    report = runner.run(runner.plan(tasks))
    assert set(report.failed) == {"config", "os"} and report.results == {"fine": 0}
    assert runner.describe(report.failed["config"]) == "bad input"
    assert runner.describe(report.failed["os"]).startswith("OSError: disk full (at test_runner.py:")
    with pytest.raises(AssertionError, match="a bug"):
        runner.run(runner.plan([runner.Task("bug", fail, ("bug",)), runner.Task("never", abs, (0,))]))


def test_steps_are_reported_and_names_must_be_distinct():
    seen = []
    runner.Serial().run([runner.Task("x", stepped, (3,), steps=3)], done=seen.append,
                        step=lambda name, what: seen.append((name, what)))
    assert seen[:3] == [("x", "step 0"), ("x", "step 1"), ("x", "step 2")] and seen[3].result == 3
    with pytest.raises(GalaxygenError, match="distinct"):
        runner.plan([runner.Task("x", abs, (0,)), runner.Task("x", abs, (1,))])


def test_process_pool_runs_tasks_in_workers_and_collects_failures(tmp_path):
    tasks = [runner.Task(f"t{i}", write, (tmp_path / f"t{i}.txt", str(i)), output=tmp_path / f"t{i}.txt")
             for i in range(3)]
    tasks += [runner.Task("bad", fail, ("config",)), runner.Task("steps", stepped, (2,), steps=2)]
    report = runner.run(runner.plan(tasks, command="test"), backend=runner.ProcessPool(2))
    assert report.results == {"t0": "0", "t1": "1", "t2": "2", "steps": 2}  # (in completion order)
    assert str(report.failed["bad"]) == "bad input"
    assert written_by(tmp_path) == {f"t{i}.txt": "test" for i in range(3)}
    assert isinstance(runner.local(2, 1), runner.Serial) and isinstance(runner.local(4, 3), runner.ProcessPool)
