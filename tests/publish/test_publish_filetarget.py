"""Every key on a `file://` target: the per-model and per-category metadata keys are written (the outer
extensionless key, a folder there, is left out for its `.json` twin), and nginx with the build's generated
config, serving the deployed directory, answers every key of the site with the site's bytes."""

from __future__ import annotations

from pathlib import Path

from builder.routes import routes
from builder.site.serve import site_files
from tests.publish.test_publish_deploy import hmr_deploy
from tests.site_support import Http, Nginx


def test_file_deploy_served_by_nginx_answers_every_key(corpus_site: Path, tmp_path: Path) -> None:
    www = tmp_path / "www"
    r = hmr_deploy(corpus_site, f"file://{www}")
    assert r.returncode == 0, r.stderr
    keys = {rt.key: rt.file for rt in routes(site_files(corpus_site))}
    model_keys = [k for k in keys if "/model/" in k and not k.endswith(".json")]
    metadata_keys = [k for k in keys if "/metadata/" in k and not k.endswith(".json")]
    assert len(model_keys) > 900 and len(metadata_keys) > 30
    # the per-model files are on disk; the outer keys that are folders are answered from their twins
    assert all((www / k).is_file() for k in model_keys)
    assert (www / "api/model_references/v2/clip").is_dir() and (www / "api/model_references/v2/clip.json").is_file()

    prefix = tmp_path / "nginx"
    server = Nginx(www, prefix)
    conf = prefix / "conf" / "nginx.conf"
    conf.write_text(conf.read_text().replace(f'include "{www}/_config/nginx.conf"',
                                             f'include "{corpus_site}/_config/nginx.conf"'))
    server.start()
    http = Http(server.port)
    try:
        wrong = []
        for key, file in sorted(keys.items()):
            if not key.startswith(("api/", "legacy/")):
                continue  # the HTML pages and schemas: the same prefix rules
            resp = http.get_key(key)
            if resp.status != 200 or resp.body != (corpus_site / file).read_bytes():
                wrong.append((key, resp.status))
            elif resp.headers.get("access-control-allow-origin") != "*":
                wrong.append((key, "no CORS"))
        assert not wrong, (len(wrong), wrong[:10])
    finally:
        http.close()
        server.stop()
