"""What one GraphQL request may ask: depth, tokens, aliases and an estimated cost.

The cost counts every field a query would resolve: a field under a connection asked for
`first: 500` counts 500 times, a list relationship counts as `LIST_ESTIMATE` items. Fragment
spreads are followed (once per path, so a cycle cannot loop); the validator also refuses them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from strawberry.extensions import SchemaExtension

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    value_from_ast_untyped,
)
from mobilize.districts.queries import MAX_PAGE

LIST_ESTIMATE = 20
DEFAULT_FIRST = 50
# The items of a page, already counted `first` times by the field that asked for the page.
PAGE_ITEMS = frozenset({"edges", "events"})


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def _page_size(field: FieldNode, variables: Mapping[str, Any]) -> int | None:
    for argument in field.arguments or ():
        if argument.name.value != "first":
            continue
        if isinstance(argument.value, VariableNode):
            value = variables.get(argument.value.name.value, DEFAULT_FIRST)
        else:
            value = value_from_ast_untyped(argument.value, dict(variables))
        try:
            return max(0, min(int(value), MAX_PAGE))
        except (TypeError, ValueError):
            return MAX_PAGE
    return None


def estimate_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0

    def walk(
        selection_set: SelectionSetNode | None, parent: Any, factor: int, seen: frozenset[str]
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name.startswith("__"):
                    continue
                definition = getattr(parent, "fields", {}).get(name)
                total += factor
                if definition is None:
                    continue
                first = _page_size(selection, variables)
                if first is not None:
                    child_factor = factor * max(first, 1)
                elif _is_list(definition.type) and name not in PAGE_ITEMS:
                    child_factor = factor * LIST_ESTIMATE
                else:
                    child_factor = factor
                total += walk(
                    selection.selection_set, get_named_type(definition.type), child_factor, seen
                )
            elif isinstance(selection, InlineFragmentNode):
                target = (
                    schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                total += walk(selection.selection_set, target, factor, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or name in seen:
                    continue
                target = schema.get_type(fragment.type_condition.name.value)
                total += walk(fragment.selection_set, target, factor, seen | {name})
        return total

    return walk(operation.selection_set, root, 1, frozenset())


class CostLimiter(SchemaExtension):
    """Refuse, before execution, a query whose estimated cost exceeds `max_cost`.

    It runs after validation rather than as a validation rule, because the cost depends on the
    variables (`first: $n`) while validation results are cached per query text."""

    def __init__(self, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and not context.result:
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            variables = dict(context.variables or {})
            for definition in document.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                cost = estimate_cost(context.schema._schema, definition, fragments, variables)
                if cost > self.max_cost:
                    context.result = ExecutionResult(
                        data=None,
                        errors=[
                            GraphQLError(
                                f"查询过大 Query too expensive: estimated cost {cost} exceeds "
                                f"{self.max_cost}; ask for fewer items (first) or fewer fields",
                                extensions={"code": "QUERY_TOO_EXPENSIVE", "cost": cost},
                            )
                        ],
                    )
                    break
        yield
