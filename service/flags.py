"""Command-line flags and SEGMENTATION_* variables, the checks across keys, and the one place the configuration is
put together.

Defaults, then the config file (if any), then variables, then flags: each wins over the ones before it. Every server
key is a flag; without a file, the flags declared on the model's, its backend's and its profile's keys describe one
model at one backend, and with one those flags are refused.
"""

from __future__ import annotations

import argparse
import os
import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from service.backends.kinds import DEFAULT_KIND, KINDS
from service.config import BackendConfig, Config, ConfigError, ModelConfig
from service.config_file import read_config_file, read_labels
from service.profiles import BUILTIN_PROFILES, Profile, ResizePolicy
from service.settings import Declared, declared, parsed, shown, with_value


@dataclass(frozen=True)
class Flag:
    item: Declared
    owner: type  # the class the key is declared on: Config, or the one model's BackendConfig, ModelConfig, Profile

    @property
    def name(self) -> str:
        """e.g. "max-image-bytes" """
        return self.item.key.flag or self.item.name.replace("_", "-")

    @property
    def model(self) -> bool:
        """Whether it describes the one flag-configured model or backend: refused with a config file."""
        return self.owner is not Config

    @property
    def env(self) -> str:
        return "SEGMENTATION_" + self.name.upper().replace("-", "_")

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")

    @property
    def help(self) -> str:
        default = shown(self.item)
        return self.item.key.help + (f" (default {default})" if default else "")

    def parse(self, text: str) -> Any:
        return self.item.key.check(parsed(text, self.item.kind))


FLAGS: tuple[Flag, ...] = (
    *(Flag(item, Config) for item in declared(Config)),
    *(
        Flag(item, owner)
        for owner in (BackendConfig, ModelConfig, Profile)
        for item in declared(owner)
        if item.key.flag
    ),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="The deeplab-gateway SegmentationService. Every flag can also be set by the environment "
        "variable SEGMENTATION_<FLAG> (e.g. SEGMENTATION_BACKEND); a flag wins over its variable, and both win "
        "over the config file's [server] settings.",
    )
    parser.add_argument(
        "--config",
        default=None,
        help="TOML file with server settings, backends and models (also SEGMENTATION_CONFIG); "
        "without it the flags describe one model at one backend",
    )
    for flag in FLAGS:
        suffix = " (not with --config)" if flag.model else ""
        parser.add_argument(f"--{flag.name}", dest=flag.key, default=None, help=flag.help + suffix)
    return parser


def load_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    args = vars(_parser().parse_args(argv))
    config_path = args.pop("config") or environ.get("SEGMENTATION_CONFIG") or None
    given: list[tuple[Flag, Any]] = []
    origins: dict[str, str] = {}  # the flag or variable each given setting came from, for messages
    for flag in FLAGS:
        raw, source = args[flag.key], f"--{flag.name}"
        if raw is None and flag.env in environ:
            raw, source = environ[flag.env], flag.env
        if raw is None:
            continue
        if config_path and flag.model:
            raise ConfigError(f"{source} cannot be combined with a config file ({config_path}): set it in the file")
        try:
            given.append((flag, flag.parse(raw)))
        except ValueError as exc:
            raise ConfigError(f"{source}={raw!r}: {exc}") from exc
        origins[flag.key] = source
    config = read_config_file(pathlib.Path(config_path)) if config_path else _single_model(given, origins)
    for flag, value in given:
        if not flag.model:
            config = with_value(config, flag.item, value)
    return check_config(config, origins)


def _single_model(given: Sequence[tuple[Flag, Any]], origins: Mapping[str, str]) -> Config:
    """The one model and backend the flags describe."""
    backend, model = BackendConfig(), ModelConfig()
    profile_name = next((v for f, v in given if f.owner is ModelConfig and f.item.field == "profile"), "")
    # A profile key given as a flag (--input-size, --decode, ...) asks for deeplab-zoo's settings so changed: the
    # model's profile is then chosen, not read from the servable.
    keys_given = any(flag.owner is Profile for flag, _ in given)
    profile = BUILTIN_PROFILES[profile_name or ("deeplab-zoo" if keys_given else "auto")]
    for flag, value in given:
        field = flag.item.field
        if flag.owner is BackendConfig:
            backend = with_value(backend, flag.item, (value,) if field == "targets" else value)
        elif flag.owner is ModelConfig and field == "labels":
            model = replace(model, labels=_labels(value, origins[flag.key]))
        elif flag.owner is ModelConfig and field != "profile":
            model = with_value(model, flag.item, value)
        elif flag.owner is Profile:
            if profile.resize != ResizePolicy.LONGEST_SIDE or profile.detect:
                why = "read from the servable" if profile.detect else "a fixed size"
                raise ConfigError(f"{origins[flag.key]} applies to the deeplab-zoo profile, not {profile_name} ({why})")
            profile = with_value(profile, flag.item, value)
    model = replace(model, profile=profile)
    return Config(backends=(backend,), models=(model,), default_model=model.name)


def _labels(path: str, origin: str) -> tuple[str, ...]:
    """The labels file named by --labels or SEGMENTATION_LABELS (`origin`), read from the working directory."""
    try:
        return read_labels(pathlib.Path(path))
    except ConfigError as exc:
        raise ConfigError(f"{origin}={path!r}: {exc}") from exc


def check_config(config: Config, origins: Mapping[str, str] | None = None) -> Config:
    """The checks across settings, once every source has been applied.

    `origins` maps a setting's key (a flag's: "tls_cert", "backend_cert") to the flag or variable that set it
    ("--tls-cert", "SEGMENTATION_TLS_CERT"); the other settings came from the config file, config.source, if any.
    A message starts as the file's and the flags' do: FILE: server.tls_cert = '...': or --tls-cert='...':.
    """
    origins = origins or {}

    def spelled(key: str, file_key: str, like: str) -> str:
        """Setting `key` (`file_key` in the file) named as the setting `like` was given."""
        origin = origins.get(like, "")
        if origin.startswith("--"):
            return "--" + key.replace("_", "-")
        if origin:
            return "SEGMENTATION_" + key.upper()
        return file_key if config.source else file_key.removeprefix("server.")

    def error(key: str, file_key: str, value: str, problem: str) -> ConfigError:
        if key in origins:
            return ConfigError(f"{origins[key]}={value!r}: {problem}")
        if config.source:
            return ConfigError(f"{config.source}: {file_key} = {value!r}: {problem}")
        return ConfigError(f"{file_key.removeprefix('server.')} = {value!r}: {problem}")

    for given, missing in (("tls_cert", "tls_key"), ("tls_key", "tls_cert")):
        if getattr(config, given) and not getattr(config, missing):
            other = spelled(missing, f"server.{missing}", like=given)
            problem = f"needs {other} too: tls_cert and tls_key go together, or neither for plaintext"
            raise error(given, f"server.{given}", getattr(config, given), problem)
    if config.tls_client_ca and not config.tls_cert:
        cert, key = (spelled(k, f"server.{k}", like="tls_client_ca") for k in ("tls_cert", "tls_key"))
        problem = f"needs {cert} and {key}: client certificates (mutual TLS) are checked over TLS"
        raise error("tls_client_ca", "server.tls_client_ca", config.tls_client_ca, problem)
    if config.auth_jwks and not (config.auth_jwt_issuer and config.auth_jwt_audience):
        issuer, audience = (
            spelled(k, f"server.{k}", like="auth_jwks") for k in ("auth_jwt_issuer", "auth_jwt_audience")
        )
        problem = f"needs {issuer} and {audience}: a JWT is accepted only for one issuer and audience"
        raise error("auth_jwks", "server.auth_jwks", config.auth_jwks, problem)
    if config.auth_certificates and not config.tls_client_ca:
        ca = spelled("tls_client_ca", "server.tls_client_ca", like="auth_certificates")
        problem = f"needs {ca}: client certificate identities are those of certificates the CA signed"
        raise error("auth_certificates", "server.auth_certificates", config.auth_certificates, problem)
    for i, backend in enumerate(config.backends):
        where = f"backends[{i}]"
        for given, missing in (("cert", "key"), ("key", "cert")):
            if getattr(backend, given) and not getattr(backend, missing):
                other = spelled(f"backend_{missing}", f"{where}.{missing}", like=f"backend_{given}")
                problem = f"needs {other} too: a backend's cert and key go together (mutual TLS), or neither"
                raise error(f"backend_{given}", f"{where}.{given}", getattr(backend, given), problem)
        if backend.cert and not backend.ca:
            ca = spelled("backend_ca", f"{where}.ca", like="backend_cert")
            problem = f"needs {ca}, the CA (PEM file) that signed the backend's certificate: mutual TLS is over TLS"
            raise error("backend_cert", f"{where}.cert", backend.cert, problem)
    kinds = {backend.name: backend.kind for backend in config.backends}
    for i, model in enumerate(config.models):
        for called in (model, *model.variant_models):
            kind = kinds.get(called.backend, DEFAULT_KIND)
            if called.version_label and not KINDS[kind].version_labels:
                where = f"models[{i}]" if called is model else f"models[{i}].variants ({called.name})"
                problem = f"backend {called.backend!r} speaks {kind}, which has no version labels; pin a version"
                raise error("version_label", f"{where}.version_label", called.version_label, problem)
    return config
