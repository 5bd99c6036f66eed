"""The small command-line framework under ``lifeboat``: typed functions become click commands.

A command is a plain function whose parameters are annotated with :class:`Option` or
:class:`Argument` (``Annotated[int, Option("--keep-last", help=...)]``); the parameter's type
and default decide the rest: ``bool`` is a flag, ``list[str]`` repeats, ``X | None`` is
optional, a parameter without a default is required. A parameter typed :class:`Context`
receives the click context.

Why not a bigger framework: every ``lifeboat`` invocation pays for its command line's
start-up, and a scheduled backup runs often. Building the commands from these annotations
costs a few milliseconds on top of click itself; the framework we used before spent about
0.3 s building a validator per parameter.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

import click
from click.exceptions import Abort, Exit

from lifeboat.errors import UsageError

Context = click.Context

__all__ = ["Abort", "App", "Argument", "Context", "Exit", "Group", "Option"]


class Option:
    """``--name`` options: the declarations (``"--keep-last", "-k"``) and their help."""

    def __init__(
        self,
        *decls: str,
        help: str = "",
        metavar: str | None = None,
        min: int | None = None,
        max: int | None = None,
        count: bool = False,
        is_eager: bool = False,
        callback: Callable[[Any], None] | None = None,
        hidden: bool = False,
    ) -> None:
        self.decls = decls
        self.help = help
        self.metavar = metavar
        self.min = min
        self.max = max
        self.count = count
        self.is_eager = is_eager
        self.callback = callback
        self.hidden = hidden


@dataclass(frozen=True)
class Argument:
    """A positional argument and its help."""

    help: str = ""
    metavar: str | None = None


class _IntRange(click.IntRange):
    name = "integer"  # click says "'x' is not a valid integer range"


class _Command(click.Command):
    """A click command whose command-line mistakes always name the command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.ctx = exc.ctx or ctx
            raise


class _Group(_Command, click.Group):
    """A click group whose command-line mistakes always name the group."""


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0], True
    return annotation, False


def _click_type(annotation: Any, spec: Option | None) -> tuple[Any, bool]:
    """The click type of a parameter, and whether it takes several values."""
    base, _ = _unwrap_optional(annotation)
    if typing.get_origin(base) is list:
        (item,) = typing.get_args(base)
        return _click_type(item, spec)[0], True
    if base is int:
        if spec is not None and (spec.min is not None or spec.max is not None):
            return _IntRange(spec.min, spec.max), False
        return click.INT, False
    if base is float:
        return click.FLOAT, False
    return click.STRING, False


def _metavar(kind: Any, explicit: str | None) -> str:
    if explicit is not None:
        return explicit
    if kind is click.INT or isinstance(kind, click.IntRange):
        return "N"
    if kind is click.FLOAT:
        return "NUMBER"
    return "TEXT"


def _parameter(name: str, annotation: Any, default: Any) -> click.Parameter | None:
    if typing.get_origin(annotation) is not typing.Annotated:
        raise TypeError(f"parameter {name!r} needs an Option or Argument annotation")
    base, *extras = typing.get_args(annotation)
    spec = next((e for e in extras if isinstance(e, Option | Argument)), None)
    required = default is inspect.Parameter.empty
    if isinstance(spec, Argument):
        kind, multiple = _click_type(base, None)
        # A required parameter gets no default at all: click 8.2 and later take an explicit
        # ``default=None`` as a value, and would call the command without the argument.
        return click.Argument(
            [name],
            type=kind,
            nargs=-1 if multiple else 1,
            required=required and not multiple,
            **({} if required or multiple else {"default": default}),
            metavar=spec.metavar,
        )
    assert isinstance(spec, Option)
    decls = list(spec.decls) or ["--" + name.replace("_", "-")]
    stripped, _ = _unwrap_optional(base)
    common: dict[str, Any] = {
        "help": spec.help,
        "hidden": spec.hidden,
        "is_eager": spec.is_eager,
        "expose_value": spec.callback is None,
    }
    if spec.callback is not None:
        callback = spec.callback
        common["callback"] = lambda _ctx, _param, value: callback(value)
    if stripped is bool:
        return click.Option([*decls, name], is_flag=True, default=bool(default), **common)
    if spec.count:
        return click.Option([*decls, name], count=True, default=0, **common)
    kind, multiple = _click_type(base, spec)
    show_default = not required and default is not None and not multiple and default != ""
    return click.Option(
        [*decls, name],
        type=kind,
        multiple=multiple,
        required=required,
        **({} if required or multiple else {"default": default}),
        metavar=_metavar(kind, spec.metavar),
        show_default=show_default,
        **common,
    )


def build_command(name: str, fn: Callable[..., Any], *, help: str | None, hidden: bool = False) -> click.Command:
    """A click command calling ``fn`` with its options (and the context, if it asks)."""
    hints = typing.get_type_hints(fn, include_extras=True)
    params: list[click.Parameter] = []
    wants_context: str | None = None
    for parameter in inspect.signature(fn).parameters.values():
        annotation = hints[parameter.name]
        if annotation is click.Context:
            wants_context = parameter.name
            continue
        built = _parameter(parameter.name, annotation, parameter.default)
        if built is not None:
            params.append(built)

    def invoke(**kwargs: Any) -> Any:
        if wants_context is not None:
            kwargs[wants_context] = click.get_current_context()
        return fn(**kwargs)

    return _Command(
        name,
        callback=invoke,
        params=params,
        help=help or fn.__doc__,
        hidden=hidden,
        context_settings={"help_option_names": ["--help"]},
    )


@dataclass
class Group:
    """A command with subcommands (``lifeboat key add``)."""

    name: str
    help: str = ""
    commands: list[click.Command] = field(default_factory=list)
    hidden: bool = False

    def command(
        self, name: str, *, help: str | None = None, hidden: bool = False
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.commands.append(build_command(name, fn, help=help, hidden=hidden))
            return fn

        return register

    def build(self) -> click.Group:
        group = _Group(
            self.name,
            help=self.help,
            callback=_require_command,
            invoke_without_command=True,
            no_args_is_help=False,
            hidden=self.hidden,
        )
        for command in self.commands:
            group.add_command(command)
        return group


class MissingCommand(click.UsageError):
    """A group (``lifeboat``, ``lifeboat key``) was called without one of its commands."""


def _require_command() -> None:
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is None:
        raise MissingCommand("no command given", ctx=ctx)


@dataclass(frozen=True)
class LazyCommand:
    """A command (``attribute`` names its function) or a group (``attribute`` None: the
    module's ``COMMANDS``) whose module is imported only when the command line names it."""

    name: str
    module: str
    attribute: str | None = None
    hidden: bool = False
    help_from_function: bool = False  # the function's docstring is the help, not the module's


class App(Group):
    """The top-level command: global options (its callback) and every command and group.

    Commands are registered by module name (:meth:`lazy`) and built when used: a run builds
    only the command its command line names, so ``lifeboat backup`` neither imports the
    other commands' modules nor builds their options (docs/architecture.md)."""

    def __init__(self, name: str, *, help: str) -> None:
        super().__init__(name, help)
        self.lazy_commands: dict[str, LazyCommand] = {}
        self.wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = lambda fn: fn
        self._callback: Callable[..., Any] | None = None

    def callback(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self._callback = fn
        return fn

    def lazy(self, command: LazyCommand) -> None:
        self.lazy_commands[command.name] = command

    def _load(self, spec: LazyCommand) -> click.Command:
        module = importlib.import_module(spec.module)
        if spec.attribute is None:
            group = Group(spec.name, help=module.__doc__ or "", hidden=spec.hidden)
            for sub, fn in module.COMMANDS.items():
                group.command(sub, help=fn.__doc__)(self.wrap(fn))
            return group.build()
        fn = getattr(module, spec.attribute)
        text = fn.__doc__ if spec.help_from_function else module.__doc__
        return build_command(spec.name, self.wrap(fn), help=text, hidden=spec.hidden)

    def build(self, only: str | None = None) -> click.Group:
        """The click command line; with ``only`` (a registered command's name), that command
        alone (every one when ``only`` is not one: the help and "did you mean" list them all)."""
        params: list[click.Parameter] = []
        options_callback: Callable[..., Any] | None = None
        if self._callback is not None:
            callback_command = build_command(self.name, self._callback, help=self.help)
            params = callback_command.params
            options_callback = callback_command.callback

        def invoke_callback(**kwargs: Any) -> None:
            if options_callback is not None:
                options_callback(**kwargs)
            _require_command()

        root = _Group(
            self.name,
            help=self.help,
            params=params,
            callback=invoke_callback,
            invoke_without_command=True,
            no_args_is_help=False,
            context_settings={"help_option_names": ["--help"], "max_content_width": 100},
        )
        for command in self.commands:
            root.add_command(command)
        chosen = [self.lazy_commands[only]] if only in self.lazy_commands else self.lazy_commands.values()
        for spec in chosen:
            root.add_command(self._load(spec))
        return root

    def __call__(self, *, args: list[str], prog_name: str, obj: object = None, only: str | None = None) -> int:
        """Run the command line; returns the exit code (``only``: the command it names, if
        known, so that only that command is built).

        Every mistake click finds on the command line (an unknown option or command, a
        missing argument, a bad value) is raised as one :class:`lifeboat.errors.UsageError`
        with a hint, so it is reported like every other error (docs/cli.md).
        """
        command = self.build(only)
        try:
            with command.make_context(prog_name, list(args), obj=obj) as ctx:
                command.invoke(ctx)
        except Exit as exc:
            return exc.exit_code
        except click.UsageError as exc:
            raise usage_error(exc) from None
        except Abort:
            raise KeyboardInterrupt from None
        return 0


def usage_error(exc: click.UsageError) -> UsageError:
    """Click's report of a bad command line as one line and a hint."""
    ctx = exc.ctx
    path = ctx.command_path if ctx is not None else "lifeboat"
    where = path.partition(" ")[2]
    prefix = f"{where}: " if where else ""
    lists = "the commands and global options" if not where else "its options"
    if isinstance(ctx.command if ctx is not None else None, click.Group):
        lists = "its commands" if where else lists
    help_hint = f"'{path} --help' lists {lists}"
    if isinstance(exc, MissingCommand) and ctx is not None and isinstance(ctx.command, click.Group):
        names = [name for name, cmd in ctx.command.commands.items() if not cmd.hidden]
        return UsageError(f"{prefix}no command given", hint=f"commands: {', '.join(names)}; {help_hint}")
    possibilities = getattr(exc, "possibilities", None) or []
    suggestion = f"did you mean {' or '.join(possibilities)}? " if possibilities else ""
    if isinstance(exc, click.NoSuchOption):
        return UsageError(f"{prefix}unknown option {exc.option_name}", hint=suggestion + help_hint)
    command_name = getattr(exc, "command_name", None)  # click.NoSuchCommand (click 8.4 and later)
    if isinstance(command_name, str):
        return UsageError(f"{prefix}unknown command {command_name!r}", hint=suggestion + help_hint)
    param = getattr(exc, "param", None)
    name = _param_name(param) if isinstance(param, click.Parameter) else ""
    if isinstance(exc, click.MissingParameter) and name:
        kind = "argument" if isinstance(param, click.Argument) else "option"
        return UsageError(f"{prefix}missing {kind} {name}", hint=help_hint)
    text = _clause(exc.message)
    if name:
        text = f"{name}: {text}"
    return UsageError(prefix + text, hint=suggestion + help_hint)


def _param_name(param: click.Parameter) -> str:
    if isinstance(param, click.Argument):
        return (param.metavar or param.name or "").upper()
    return param.opts[0] if param.opts else (param.name or "")


def _clause(message: str) -> str:
    """Click's sentence as a clause: one line, no final period, lower-case start."""
    text = " ".join(message.split()).rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() or len(text) < 2 else text
