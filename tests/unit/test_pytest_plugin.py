"""The pytest plugin's Compose fixtures and report hook, run by pytester in a subprocess with a fake Compose."""

import textwrap
from pathlib import Path

import pytest

from shared_core.pytest_plugin import ComposeStack
from shared_core.testing import Reply, Upstream

pytest_plugins = ["pytester"]

#: A Compose command that fails ``up`` and ``down``, each with a message of its own.
FAKE_COMPOSE = """#!/bin/sh
case "$*" in
  *" up "*) echo "up failed on purpose" >&2; exit 3 ;;
  *" down "*) echo "down failed on purpose" >&2; exit 4 ;;
esac
"""


def run(pytester: pytest.Pytester, conftest: str, test: str) -> pytest.RunResult:
    """Run ``test`` with ``conftest`` and the plugin, as a user's suite would, in a fresh interpreter."""
    pytester.makeconftest(textwrap.dedent(conftest))
    pytester.makepyfile(textwrap.dedent(test))
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
        return pytester.runpytest_subprocess(
            "-p", "shared_core.pytest_plugin", "-p", "no:django", "-p", "no:cacheprovider"
        )


def test_a_failing_down_never_hides_why_the_stack_did_not_come_up(pytester):
    """When up fails and down fails too, the error shown is up's, with down's failure as a note on it."""
    fake = pytester.path / "fake-compose"
    fake.write_text(FAKE_COMPOSE)
    fake.chmod(0o755)
    conftest = f"""
        import pytest

        @pytest.fixture(scope="session")
        def compose_command():
            return ["{fake}"]

        @pytest.fixture(scope="session")
        def compose_files():
            return ["compose.yaml"]
    """
    result = run(pytester, conftest, "def test_uses_the_stack(compose_stack):\n    pass\n")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*up failed on purpose*"])
    result.stdout.fnmatch_lines(["*and then compose down failed*down failed on purpose*"])


def test_a_failed_test_keeps_its_report_when_the_engine_cannot_be_reached(pytester):
    """The report hook's container logs are replaced by one line when Docker fails; the test's error stands."""
    conftest = """
        import docker
        import pytest
        from shared_core.pytest_plugin import ComposeStack

        class Unreachable(ComposeStack):
            def all_containers(self):
                raise docker.errors.DockerException("engine unreachable on purpose")

        @pytest.fixture
        def stack():
            return Unreachable(None, "project", ["compose"])
    """
    result = run(pytester, conftest, "def test_fails(stack):\n    assert 1 == 2, 'the test failed on purpose'\n")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the test failed on purpose*", "*not available: DockerException*unreachable*"])


def test_call_takes_a_timeout_of_its_own():
    """ComposeStack.call(..., timeout=5) reaches the service instead of raising TypeError for a duplicate."""

    class Local(ComposeStack):
        def url(self, service: str, port: int = 8000) -> str:
            return server.url

    with Upstream() as server:
        server.script("/ping", Reply(200, b'{"pong": true}'))
        stack = Local(None, "project", ["compose"], token="t")  # type: ignore[arg-type]
        response = stack.call("GET", "any-service", "/ping", timeout=5)
    assert response.json() == {"pong": True}
    assert server.hits("/ping")[0].headers["Authorization"] == "Bearer t"


@pytest.mark.docker
def test_an_image_the_engine_lacks_fails_the_stack_before_it_starts_naming_it_and_what_to_do(pytester):
    """A stack whose service runs an image this engine lacks fails at once, naming the image and the suite's hint,
    before Compose starts; an image the stack builds itself, or one named with its registry, is not checked."""
    absent = f"shared-core/never-built-{pytester.path.name.lower()}:0"
    (pytester.path / "compose.yaml").write_text(
        textwrap.dedent(f"""
            services:
              ours: {{build: ., image: shared-core/ours-{pytester.path.name.lower()}:0}}
              ours-worker: {{image: shared-core/ours-{pytester.path.name.lower()}:0}}
              neighbour: {{image: {absent}}}
              elsewhere: {{image: registry.example:5000/shared-core/user-service:0}}
        """)
    )
    conftest = f"""
        import pytest

        @pytest.fixture(scope="session")
        def compose_files():
            return ["{pytester.path / "compose.yaml"}"]

        @pytest.fixture(scope="session")
        def compose_image_hint():
            return "make images in shared-core"
    """
    result = run(pytester, conftest, "def test_uses_the_stack(compose_stack):\n    pass\n")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*this Docker engine lacks {absent}: make images in shared-core*"])
    assert "registry.example" not in result.stdout.str() and "ours-" not in result.stdout.str()
    assert "Pulling" not in result.stdout.str() + result.stderr.str()
