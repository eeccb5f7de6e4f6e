from pathview.workspace import Workspace


def test_workspace_files_by_quickhash_under_root(tmp_path):
    ws = Workspace.at(tmp_path / "ws")
    assert ws.root.is_dir()
    assert ws.findings_db.parent == ws.root
    assert ws.analysis_dir("abc") == ws.root / "analysis" / "abc"


def test_default_workspace_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHVIEW_WORKSPACE", str(tmp_path / "env-ws"))
    assert Workspace.at().root == tmp_path / "env-ws"
