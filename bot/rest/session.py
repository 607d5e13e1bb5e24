"""The ``requests`` session each REST worker thread talks to the one server through.

A plain ``requests.Session`` re-reads the process environment on every call: the proxy variables
(a walk over all of ``os.environ``, twice), ``NO_PROXY``, the CA bundle variables, and ``~/.netrc``
(a few ``stat`` calls). That was a third of the bot's CPU per REST call, and a catch-up of
thousands of quiet rooms is thousands of calls. The bot talks to one server, so this session
reads those once, for that server, when it is made, and answers with the same settings ``requests``
would have found. It also prepares a plain request (what ``rocketchat_API`` sends: a URL, headers,
a body) without ``requests``' general merging of per-call cookies, parameters and auth it is never
given; anything else goes the ordinary way.

The environment is read when a worker thread makes its session (at the client's first calls), so
a proxy variable changed while the bot runs takes effect at its next start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.models import PreparedRequest
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies, get_netrc_auth

__all__ = ["ServerSession"]

# requests' own merge of a per-call setting with the session's (untyped in its stubs).
_merge: Callable[..., Any] = merge_setting


class ServerSession(requests.Session):
    def __init__(self, server_url: str) -> None:
        super().__init__()
        self._server = server_url.rstrip("/") + "/"
        # What trust_env would make requests look up on each call, looked up once for the server.
        self._env_proxies: dict[str, str] = dict(get_environ_proxies(self._server))
        self._env_verify = _env_ca_bundle()
        netrc = get_netrc_auth(self._server)
        if netrc is not None:
            self.auth = netrc
        self.trust_env = False

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> Any:
        """As ``requests`` with ``trust_env`` on, the environment as it was read at the start."""
        own = isinstance(url, str) and url.startswith(self._server)
        env_proxies = self._env_proxies if own else dict(get_environ_proxies(str(url)))
        if proxies is not None:
            for k, v in env_proxies.items():
                proxies.setdefault(k, v)
        if verify is True or verify is None:
            verify = (self._env_verify if own else _env_ca_bundle()) or verify
        return {
            "proxies": _merge(proxies, self.proxies),
            "stream": _merge(stream, self.stream),
            "verify": _merge(verify, self.verify),
            "cert": _merge(cert, self.cert),
        }

    def request(  # type: ignore[override]
        self,
        method: str | bytes,
        url: str | bytes,
        params: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        timeout: Any = None,
        allow_redirects: bool = True,
        proxies: Any = None,
        hooks: Any = None,
        stream: bool | None = None,
        verify: Any = None,
        cert: Any = None,
        json: Any = None,
    ) -> requests.Response:
        if params or cookies or files or auth or hooks or not isinstance(url, str):
            return super().request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                cookies=cookies,
                files=files,
                auth=auth,
                timeout=timeout,
                allow_redirects=allow_redirects,
                proxies=proxies,
                hooks=hooks,
                stream=stream,
                verify=verify,
                cert=cert,
                json=json,
            )
        # What prepare_request builds for a request with none of those, without copying the
        # session's cookie jar or merging empty per-call settings (the jar is only read here).
        prep = PreparedRequest()
        prep.prepare(
            method=(method.decode() if isinstance(method, bytes) else method).upper(),
            url=url,
            headers=_merge(headers, self.headers, dict_class=CaseInsensitiveDict),
            data=data or {},
            json=json,
            auth=self.auth,
            cookies=self.cookies,
            hooks=self.hooks,
        )
        settings = self.merge_environment_settings(prep.url, proxies or {}, stream, verify, cert)
        return self.send(prep, timeout=timeout, allow_redirects=allow_redirects, **settings)


def _env_ca_bundle() -> str | None:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
