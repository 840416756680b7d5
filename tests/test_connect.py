import subprocess
import sys

import pytest

import labkit


def test_default_is_the_embedded_mesh_with_seed_0():
    mesh = labkit.connect()
    assert mesh.backend == "sim" and mesh.seed == 0


def test_sim_with_a_seed():
    assert labkit.connect("sim", seed=7).seed == 7


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(labkit.BackendError) as err:
        labkit.connect("minikube")
    msg = str(err.value)
    assert "'minikube'" in msg and "'sim'" in msg and "'kube'" in msg


def test_kube_without_a_context_refuses_and_names_the_fix(monkeypatch):
    monkeypatch.delenv("LABKIT_CONTEXT", raising=False)
    with pytest.raises(labkit.BackendError) as err:
        labkit.connect("kube")
    assert "context=" in str(err.value) and "LABKIT_CONTEXT" in str(err.value)


def test_kube_with_an_unknown_context_lists_the_available_ones(tmp_path, monkeypatch):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kind-other\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: kind-other, context: {cluster: c, user: u}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("LABKIT_CONTEXT", "kind-labs")
    with pytest.raises(labkit.BackendError) as err:
        labkit.connect("kube")
    assert "'kind-labs' not found" in str(err.value) and "kind-other" in str(err.value)


def test_sim_refuses_a_context_rather_than_ignoring_it():
    with pytest.raises(labkit.BackendError, match="embedded mesh"):
        labkit.connect("sim", context="kind-labs")


@pytest.mark.parametrize("seed", ["7", 1.5, True])
def test_sim_seed_must_be_an_integer(seed):
    with pytest.raises(labkit.BackendError, match="seed"):
        labkit.connect("sim", seed=seed)


def test_wait_advances_virtual_time_only():
    mesh = labkit.connect()
    start = mesh.now
    mesh.wait("1h30m")
    assert (mesh.now - start).total_seconds() == 5400


def test_wait_rejects_bad_durations():
    mesh = labkit.connect()
    with pytest.raises(labkit.DurationError, match="duration="):
        mesh.wait("soon")


def test_wait_for_times_out_naming_the_condition():
    mesh = labkit.connect()

    def never_ready(m):
        return False

    with pytest.raises(TimeoutError, match="never_ready"):
        mesh.wait_for(never_ready, timeout="1m", every="10s")


def test_import_is_light():
    """`import labkit` must not pull in kubernetes (~2 s) or pandas."""
    code = "import sys, labkit; print(sorted(m for m in ('kubernetes', 'pandas', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
