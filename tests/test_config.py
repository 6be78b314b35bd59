"""Where keys come from, and that they never show themselves."""

import pickle

import pytest

from comfyui_fal_qwen_edit.nodes.fal.wire import config as cfg
from comfyui_fal_qwen_edit.nodes.fal.base.errors import ConfigError, FalError, MissingKeyError, redact

KEY = "k-1234567890-abcdef-SECRET"


def env(tmp_path, **values):
    # HOME points at an empty folder so a developer's own config never leaks into tests.
    base = {"HOME": str(tmp_path), "FAL_QWEN_EDIT_CONFIG": str(tmp_path / "absent.ini")}
    base.update(values)
    return base


def test_fal_key_from_environment(tmp_path):
    config = cfg.load_config(environ=env(tmp_path, FAL_KEY=KEY))
    assert config.mode == "fal"
    assert config.auth_header() == {"Authorization": f"Key {KEY}"}
    assert config.queue_base == cfg.FAL_QUEUE_BASE and config.rest_base == cfg.FAL_REST_BASE
    assert config.key_source == "environment variable FAL_KEY"


def test_key_id_and_secret_are_joined(tmp_path):
    config = cfg.load_config(environ=env(tmp_path, FAL_KEY_ID="id", FAL_KEY_SECRET="secretpart"))
    assert config.key.reveal() == "id:secretpart"


def test_named_variable_wins_and_is_the_only_place_looked(tmp_path):
    # --key-env on the CLI: the user's own word, any name (a workflow's is judged in test_host_trust.py)
    config = cfg.load_config(key_env="MY_FAL", environ=env(tmp_path, FAL_KEY="other", MY_FAL=KEY), from_user=True)
    assert config.key.reveal() == KEY
    with pytest.raises(MissingKeyError, match="MY_FAL"):
        cfg.load_config(key_env="MY_FAL", environ=env(tmp_path, FAL_KEY="other"), from_user=True)


def test_gateway_from_config_file(tmp_path):
    ini = tmp_path / "config.ini"
    ini.write_text(f"[gateway]\nbase_url = https://gw.example.com/api/\ntoken = {KEY}\n")
    config = cfg.load_config(environ=env(tmp_path, FAL_QWEN_EDIT_CONFIG=str(ini)))
    assert config.mode == "gateway"
    assert config.queue_base == "https://gw.example.com/api"
    assert config.auth_header() == {"Authorization": f"Bearer {KEY}"}
    assert not config.uses_storage  # gateways get data URIs
    assert str(ini) in config.key_source


def test_environment_beats_config_file(tmp_path):
    ini = tmp_path / "config.ini"
    ini.write_text("[fal]\nkey = from-file-key\n")
    config = cfg.load_config(environ=env(tmp_path, FAL_QWEN_EDIT_CONFIG=str(ini), FAL_KEY=KEY))
    assert config.key.reveal() == KEY


def test_missing_key_says_where_to_put_it(tmp_path):
    with pytest.raises(MissingKeyError) as info:
        cfg.load_config(environ=env(tmp_path))
    message = str(info.value)
    assert "FAL_KEY" in message and str(tmp_path / "absent.ini") in message and "fal panel" in message


def test_missing_key_names_the_platform_config_file_not_the_installed_pack(tmp_path):
    # pip installs the pack into site-packages: a config.ini there is wiped by the next upgrade
    with pytest.raises(MissingKeyError) as info:
        cfg.load_config(environ={"HOME": str(tmp_path)})
    message = str(info.value)
    assert str(tmp_path / ".config" / "comfyui-fal-qwen-edit" / "config.ini") in message
    assert str(cfg.PACK_DIR) not in message


def test_gateway_without_url_is_explained(tmp_path):
    with pytest.raises(ConfigError, match="FAL_GATEWAY_URL"):
        cfg.load_config(mode="gateway", environ=env(tmp_path, FAL_GATEWAY_TOKEN=KEY))


def test_plain_http_only_to_loopback(tmp_path):
    with pytest.raises(ConfigError, match="plain http"):
        cfg.load_config(base_url="http://gateway.example.com", environ=env(tmp_path, FAL_GATEWAY_TOKEN=KEY),
                        from_user=True)
    ok = cfg.load_config(base_url="http://127.0.0.1:9999", environ=env(tmp_path, FAL_GATEWAY_TOKEN=KEY), from_user=True)
    assert ok.queue_base == "http://127.0.0.1:9999"
    with pytest.raises(ConfigError, match="http"):
        cfg.load_config(base_url="ftp://x", environ=env(tmp_path, FAL_GATEWAY_TOKEN=KEY), from_user=True)


def test_key_goes_only_to_configured_hosts(tmp_path):
    config = cfg.load_config(environ=env(tmp_path, FAL_KEY=KEY))
    assert config.may_send_key_to("https://queue.fal.run/fal-ai/x/requests/1")
    assert config.may_send_key_to("https://rest.fal.ai/storage/auth/token")
    assert not config.may_send_key_to("https://v3.fal.media/files/abc.png")
    assert not config.may_send_key_to("http://queue.fal.run/fal-ai/x")  # scheme matters too


def test_secret_never_shows(tmp_path):
    config = cfg.load_config(environ=env(tmp_path, FAL_KEY=KEY))
    for text in (repr(config), str(config), repr(config.key), str(config.key), f"{config.key}",
                 "%s" % (config.key,)):
        assert KEY not in text
    with pytest.raises(TypeError):
        pickle.dumps(config.key)


def test_errors_and_redact_scrub_registered_keys(tmp_path):
    cfg.load_config(environ=env(tmp_path, FAL_KEY=KEY))
    error = FalError(f"server said: bad header Key {KEY}")
    assert KEY not in str(error)
    assert redact(f"Authorization: Bearer {'x' * 40}") == "Authorization: Bearer ***"


def test_unparseable_config_file_does_not_quote_it(tmp_path):
    ini = tmp_path / "config.ini"
    ini.write_text(f"key = {KEY}\n")  # no section header
    with pytest.raises(ConfigError) as info:
        cfg.load_config(environ=env(tmp_path, FAL_QWEN_EDIT_CONFIG=str(ini)))
    assert KEY not in str(info.value)


def test_connection_settings_refuse_a_pasted_key_without_echoing_it():
    from comfyui_fal_qwen_edit.nodes.fal.edit.connection import ConnectionSettings
    with pytest.raises(ConfigError) as info:
        ConnectionSettings(key_env=KEY)
    assert KEY not in str(info.value) and "NAME of an environment variable" in str(info.value)
    with pytest.raises(ConfigError, match="credentials"):
        ConnectionSettings(base_url="https://user:secret@gw.example.com")
    assert "FAL_KEY" in repr(ConnectionSettings(key_env="FAL_KEY"))


def test_clients_are_shared_per_setting_and_renewed_with_a_new_key(monkeypatch, tmp_path):
    from comfyui_fal_qwen_edit.nodes.fal.edit.connection import ConnectionSettings, client_for
    for name, value in env(tmp_path, FAL_KEY=KEY, FAL_OTHER_KEY="other-key-123").items():
        monkeypatch.setenv(name, value)
    first = client_for()
    assert client_for() is first and client_for(ConnectionSettings(mode="fal")) is first
    other = client_for(ConnectionSettings(key_env="FAL_OTHER_KEY"))
    assert other is not first and other.config.key.reveal() == "other-key-123"
    monkeypatch.setenv("FAL_KEY", KEY + "-rotated")
    assert client_for() is not first


def test_proxy_mode_needs_no_key_and_sends_a_token_only_to_the_proxy(tmp_path):
    proxy = "https://app.example.com/api/fal/proxy"
    config = cfg.load_config(environ=env(tmp_path, FAL_PROXY_URL=proxy, FAL_QUEUE_BASE="http://127.0.0.1:1"))
    assert (config.mode, config.proxy_url, config.auth_header()) == ("proxy", proxy, {})
    assert config.queue_base == cfg.FAL_QUEUE_BASE  # the targets stay fal's own hosts
    assert config.uses_storage and config.is_api_url("https://rest.fal.ai/storage/upload/initiate")
    ini = tmp_path / "config.ini"
    ini.write_text(f"[proxy]\nurl = {proxy}\ntoken = {KEY}\n")
    config = cfg.load_config(environ=env(tmp_path, FAL_QWEN_EDIT_CONFIG=str(ini)))
    assert config.mode == "proxy" and config.auth_header() == {"Authorization": f"Bearer {KEY}"}
    assert config.may_send_key_to(proxy + "?x=1")
    assert not config.may_send_key_to("https://queue.fal.run/fal-ai/x")  # fal itself gets the proxy's key
    assert not config.may_send_key_to("https://v3.fal.media/files/abc.png")


def test_proxy_mode_refuses_what_it_cannot_use(tmp_path):
    with pytest.raises(ConfigError, match="FAL_PROXY_URL"):
        cfg.load_config(mode="proxy", environ=env(tmp_path))
    with pytest.raises(ConfigError, match="https"):
        cfg.load_config(environ=env(tmp_path, FAL_PROXY_URL="http://app.example.com/api/fal/proxy"))
    with pytest.raises(MissingKeyError, match="No proxy token found.*MY_PROXY_TOKEN"):
        cfg.load_config(mode="proxy", key_env="MY_PROXY_TOKEN", environ=env(tmp_path, FAL_PROXY_URL="https://a.b/p"),
                        from_user=True)
    with pytest.raises(ConfigError, match="Unknown connection mode"):
        cfg.load_config(mode="carrier-pigeon", environ=env(tmp_path, FAL_KEY=KEY))


def test_input_and_upload_settings_from_the_environment_or_config_ini(tmp_path):
    ini = tmp_path / "config.ini"
    ini.write_text("[inputs]\nresize = off\nupload_format = jpeg_95\n[connection]\nupload_expiry = 7d\n")
    base = env(tmp_path, FAL_QWEN_EDIT_CONFIG=str(ini), FAL_KEY=KEY)
    assert cfg.input_defaults(base) == ("off", "jpeg_95")
    assert cfg.input_defaults({**base, "FAL_INPUT_RESIZE": "fit-model"}) == ("fit model", "jpeg_95")
    assert cfg.input_defaults(env(tmp_path)) == ("fit model", "png")
    assert cfg.load_config(environ=base).upload_expiry == "7d"
    assert cfg.load_config(environ={**base, "FAL_UPLOAD_EXPIRY": "1h"}).upload_expiry == "1h"
    assert cfg.load_config(environ=env(tmp_path, FAL_KEY=KEY)).upload_expiry == cfg.DEFAULT_UPLOAD_EXPIRY == "1d"
    with pytest.raises(ConfigError, match="upload_expiry"):
        cfg.load_config(environ={**base, "FAL_UPLOAD_EXPIRY": "forever"})


def test_a_url_with_credentials_is_refused_without_echoing_them(tmp_path):
    for name in ("FAL_PROXY_URL", "FAL_GATEWAY_URL"):
        with pytest.raises(ConfigError, match="credentials") as info:
            cfg.load_config(environ=env(tmp_path, **{name: "https://me:s3cretpass@app.example.com/p"},
                                        FAL_GATEWAY_TOKEN=KEY))
        assert "s3cretpass" not in str(info.value)


def test_a_moved_queue_takes_the_platform_api_along_so_its_key_never_reaches_api_fal_ai():
    from comfyui_fal_qwen_edit.nodes.fal.wire.config import FAL_API_BASE, load_config
    base = {"FAL_KEY": "k" * 20, "FAL_QWEN_EDIT_CONFIG": "/nonexistent", "HOME": "/nonexistent"}
    assert load_config(environ=base).api_base == FAL_API_BASE
    moved = load_config(environ={**base, "FAL_QUEUE_BASE": "http://127.0.0.1:9"})
    assert moved.api_base == "http://127.0.0.1:9" and not moved.may_send_key_to(FAL_API_BASE + "/v1/models/pricing")
    both = load_config(environ={**base, "FAL_QUEUE_BASE": "http://127.0.0.1:9", "FAL_API_BASE": "http://127.0.0.1:8"})
    assert both.api_base == "http://127.0.0.1:8"
