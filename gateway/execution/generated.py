"""Functions written as Python source at run time, once per operation or selection (as graphql-jit does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class GeneratedFunction:
    """One function being written: its body's lines, the objects they name, and the compiled result."""

    def __init__(self, function_name: str, parameters: str, names: dict[str, Any]) -> None:
        self._function_name = function_name
        self._lines = [f"def {function_name}({parameters}):"]
        self._names = dict(names)
        self._count = 0

    def emit(self, depth: int, line: str) -> None:
        self._lines.append("    " * depth + line)

    def local(self) -> str:
        """A new local variable's name."""
        self._count += 1
        return f"v{self._count}"

    def name(self, thing: Any) -> str:
        """The generated code's name for an object it uses (one name per object)."""
        for name, known in self._names.items():
            if known is thing:
                return name
        name = f"_c{len(self._names)}"
        self._names[name] = thing
        return name

    def compile(self, footer: str, filename: str, too_deep: type[Exception]) -> Callable[..., Any]:
        """The function, with `footer` as its last line; raises too_deep when it nests deeper than Python's
        compiler allows. The source stays on the function as `source` (for tests, and for reading)."""
        source = "\n".join([*self._lines, footer, ""])
        namespace = dict(self._names)
        try:
            code = compile(source, filename, "exec")
        except (SyntaxError, RecursionError) as error:
            raise too_deep("too deeply nested") from error
        exec(code, namespace)
        function = namespace[self._function_name]
        function.source = source
        return function  # type: ignore[no-any-return]
