"""Contracts from annotations: what counts as a contract, what it accepts, how it names
a bad field, and the TaskHandle that ``@app.task`` returns."""

from __future__ import annotations

import pickle
import sys
import typing
from dataclasses import dataclass
from typing import Any

import pydantic
import pytest
from tests import asyncio_kit
from tests.integration.contracts import handlers as h
from typing_extensions import TypedDict

from trellis_actors import (
    App,
    ConfigurationError,
    TaskHandle,
    TrellisError,
    ValidationError,
    open_runtime,
)
from trellis_actors.contracts import ANY_JSON, contract_of


class Order(pydantic.BaseModel):
    sku: str
    quantity: int = pydantic.Field(gt=0)


class Line(TypedDict):
    sku: str
    quantity: int


class PlainLine(typing.TypedDict):
    """``typing``'s own TypedDict, which pydantic takes only from Python 3.12."""

    sku: str


@dataclass
class Box:
    width: int


async def takes_order(ctx: Any, order: Order) -> list[Line]:
    return []


async def takes_anything(ctx, payload):  # type: ignore[no-untyped-def]  # unannotated on purpose
    return payload


async def takes_any(ctx: Any, payload: Any) -> Any:
    return payload


class TestContractOf:
    def test_no_annotation_or_any_means_any_json(self) -> None:
        assert contract_of(takes_anything) is ANY_JSON
        assert contract_of(takes_any) is ANY_JSON

    def test_a_model_payload_is_parsed_and_stored_as_json(self) -> None:
        contract = contract_of(takes_order)
        assert contract.accept(Order(sku="a", quantity=2)) == {"sku": "a", "quantity": 2}
        assert contract.accept({"sku": "a", "quantity": "2"}) == {"sku": "a", "quantity": 2}
        assert contract.parse({"sku": "a", "quantity": 2}) == Order(sku="a", quantity=2)

    def test_a_bad_field_is_named_under_payload(self) -> None:
        with pytest.raises(ValidationError) as caught:
            contract_of(takes_order).accept({"sku": "a", "quantity": 0})
        assert caught.value.field == "payload.quantity"
        assert "greater than 0" in str(caught.value)

    def test_several_problems_are_all_told(self) -> None:
        with pytest.raises(ValidationError) as caught:
            contract_of(takes_order).accept({})
        assert caught.value.field == "payload.sku"
        assert "payload.quantity" in str(caught.value)

    def test_results_are_checked_and_given_as_json(self) -> None:
        contract = contract_of(takes_order)
        assert contract.give([{"sku": "a", "quantity": 1}]) == [{"sku": "a", "quantity": 1}]
        with pytest.raises(ValidationError) as caught:
            contract.give([{"sku": "a"}])
        assert caught.value.field == "result.0.quantity"

    def test_types_defined_where_the_handler_is_registered_resolve(self) -> None:
        app = App(builtins=False)

        class Local(pydantic.BaseModel):
            n: int

        @app.task
        async def uses_local(ctx: Any, payload: Local) -> None:
            return None

        with pytest.raises(ValidationError):
            uses_local.contract.accept({"n": "many"})

    def test_a_type_that_cannot_be_checked_is_refused_at_registration(self) -> None:
        class Opaque:
            pass

        async def odd(ctx: Any, payload: Opaque) -> None:
            return None

        with pytest.raises(ConfigurationError, match="Opaque"):
            App(builtins=False).task(odd)

    def test_an_unresolvable_name_is_refused_at_registration(self) -> None:
        async def missing(ctx: Any, payload: Nowhere) -> None:  # type: ignore[name-defined]  # noqa: F821
            return None

        with pytest.raises(ConfigurationError, match="Nowhere"):
            App(builtins=False).task(missing)

    @pytest.mark.skipif(sys.version_info >= (3, 12), reason="pydantic takes it from 3.12")
    def test_typing_typed_dict_before_3_12_is_refused_at_registration(self) -> None:
        """pydantic refuses ``typing.TypedDict`` before Python 3.12 (its own user error):
        a ConfigurationError naming the type and what to write instead."""

        async def plain(ctx: Any, payload: PlainLine) -> None:
            return None

        with pytest.raises(ConfigurationError, match=r"PlainLine.*typing_extensions"):
            App(builtins=False).task(plain)

    def test_schemas_are_json_schema(self) -> None:
        schemas = contract_of(takes_order).schemas()
        assert schemas["payload_schema"]["required"] == ["sku", "quantity"]
        assert schemas["result_schema"]["type"] == "array"
        assert ANY_JSON.schemas() == {"payload_schema": None, "result_schema": None}


class TestTaskHandle:
    def test_the_handle_stands_for_its_function(self) -> None:
        assert isinstance(h.send_email, TaskHandle)
        assert h.send_email.name == "send_email"
        assert h.send_email.__name__ == "send_email"
        assert h.send_email.__doc__ == "An async handler taking and giving pydantic models."

    async def test_it_can_be_called_directly_in_a_unit_test(self) -> None:
        receipt = await h.send_email(None, h.Email(to="a@b.c", subject="one two"))  # type: ignore[arg-type]  # no ctx needed here
        assert receipt == h.Receipt(to="a@b.c", words=2)
        assert await h.double(None, 4) == 8  # type: ignore[arg-type]  # no ctx needed here

    def test_it_pickles_by_reference(self) -> None:
        assert pickle.loads(pickle.dumps(h.send_email_in_process)) is h.send_email_in_process

    def test_a_handle_registers_again_under_another_name(self) -> None:
        app = App(builtins=False)
        again = app.task(h.double, name="twice")
        assert again.name == "twice"
        assert app.get("twice").handler is h.double.task_type.handler

    def test_a_process_handler_may_be_decorated_at_module_level(self) -> None:
        assert h.app.get("send_email_in_process").executor == "process"


def test_open_runtime_under_asyncio_points_to_the_client() -> None:
    async def main() -> None:
        async with open_runtime():
            pass  # pragma: no cover - refused before

    with pytest.raises(TrellisError) as caught:
        asyncio_kit.run(main)
    assert "trellis_actors.client.AsyncClient" in str(caught.value)
