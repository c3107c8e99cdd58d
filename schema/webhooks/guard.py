"""``PartnerGuard``: partners' operations (webhook alerts) refused before execution to a
request without a key, with one ``UNAUTHENTICATED`` error and no data, as the edge
refuses a bad key. The resolvers check again (``resolvers/webhooks.py``)."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import FragmentDefinitionNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from schema.error_codes import ErrorCode, graphql_error
from schema.introspection import _selections

__all__ = ["PARTNER_FIELDS", "PartnerGuard"]

PARTNER_FIELDS = frozenset(
    {"createSlotAlertWebhook", "deleteSlotAlertWebhook", "slotAlertWebhooks"}
)


class PartnerGuard(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        self._check()
        yield

    def _check(self) -> None:
        context = self.execution_context
        document = context.graphql_document
        if document is None or context.pre_execution_errors:
            return
        if getattr(context.context, "client_id", None) is not None:
            return
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
                for field in _selections(definition.selection_set.selections):
                    if field.name.value in PARTNER_FIELDS:
                        context.pre_execution_errors = [
                            graphql_error(
                                ErrorCode.UNAUTHENTICATED,
                                f"{field.name.value} is for partners: send your key as "
                                "Authorization: Bearer KEY",
                            )
                        ]
                        return
