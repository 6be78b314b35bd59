"""The "fal Connection" node: where the key lives and which host to use, never the key."""

from __future__ import annotations

from comfy_api.latest import io

from .fal.wire.config import DEFAULT_UPLOAD_EXPIRY, UPLOAD_EXPIRIES
from .comfy_progress import node_errors
from .fal.edit.connection import ConnectionSettings

FalConnection = io.Custom("FAL_CONNECTION")


class FalConnectionNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FalQwenConnection",
            display_name="fal Connection",
            category="fal/Qwen Edit",
            description="Connection settings for the fal nodes. Holds the NAME of the environment variable "
                        "with the key, never the key; and a workflow cannot send the key anywhere but the "
                        "hosts this machine configured or trusts (README: Sharing workflows safely).",
            inputs=[
                io.Combo.Input("mode", options=["auto", "fal", "gateway", "proxy"], default="auto",
                               tooltip="fal: queue.fal.run with 'Authorization: Key'. gateway: your base URL "
                                       "with 'Authorization: Bearer' (gateways without /status work too). "
                                       "proxy: fal's server proxy (its server-proxy package) at base_url, which "
                                       "holds the key. auto: gateway when a gateway URL is configured "
                                       "(FAL_GATEWAY_URL or config.ini), else proxy when a proxy URL is, else fal."),
                io.String.Input("base_url", default="",
                                tooltip="Gateway base URL, or the proxy's URL in proxy mode (https; plain http "
                                        "only to localhost). Empty: FAL_GATEWAY_URL / FAL_PROXY_URL or config.ini. "
                                        "Only those, or a host listed in trusted_hosts under [connection] in "
                                        "config.ini (FAL_TRUSTED_HOSTS); any other is refused before anything is sent."),
                io.String.Input("key_env", default="",
                                tooltip="Name of the environment variable holding the key or token "
                                        "(e.g. FAL_KEY). Empty: FAL_KEY / FAL_GATEWAY_TOKEN / FAL_PROXY_TOKEN, "
                                        "then config.ini; a proxy needs none. Only FAL_… names, or those listed "
                                        "in allowed_key_envs under [connection] in config.ini. Never paste the "
                                        "key itself here: it is cleared."),
                io.Combo.Input("upload", options=["auto", "storage", "data_uri"], default="auto",
                               tooltip="How input images reach fal: storage uploads (fal direct, proxy) or "
                                       "inline data URIs (gateways). auto picks by mode."),
                io.Combo.Input("upload_expiry", options=["default", *UPLOAD_EXPIRIES], default="default",
                               optional=True,
                               tooltip="How long fal storage keeps uploaded inputs (your photos are public at "
                                       f"their URL until then). default: FAL_UPLOAD_EXPIRY or config.ini, else "
                                       f"{DEFAULT_UPLOAD_EXPIRY}. never: fal's own retention."),
                io.Combo.Input("keep_on_fal", options=["default", "on", "off"], default="default", optional=True,
                               tooltip="off: ask fal not to keep this connection's requests (X-Fal-Store-IO: 0; "
                                       "30 days otherwise). The outputs are fetched as soon as a job ends and kept "
                                       "on this machine, where Result by Request ID finds them; fal itself keeps "
                                       "the result only 1 hour (6 minutes at 10 KB or more). default: "
                                       "FAL_KEEP_ON_FAL or config.ini, else on."),
            ],
            outputs=[FalConnection.Output(display_name="connection",
                                          tooltip="To the connection input of the fal nodes.")],
        )

    @classmethod
    def execute(cls, mode: str, base_url: str, key_env: str, upload: str,
                upload_expiry: str | None = None, keep_on_fal: str | None = None) -> io.NodeOutput:
        settings = ConnectionSettings(mode=mode, base_url=base_url.strip(), key_env=key_env.strip(),
                                      upload=upload, upload_expiry=upload_expiry or "default",
                                      keep_on_fal=keep_on_fal or "default")
        with node_errors():
            settings.load()  # fail here, on this node, when the key is missing or the URL is unusable
        return io.NodeOutput(settings)
