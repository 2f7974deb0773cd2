"""serving/fleet/replica.py over serving/live.py in-process: admin operations written to the desired state
(the local file backend) and applied to in-process slots (serving/inprocess.py, the placement served by
default, with fake engines): versions loaded and unloaded, aliases split and moved, a failed load leaving
everything else serving, promotions and rollbacks, stale writes. The cards come from the real model store."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from models import store
from serving import inprocess, slots
from serving.errors import Conflict, NotFound, Unavailable
from serving.fleet.backends.base import StaleState
from serving.fleet.backends.files import FileBackend
from serving.fleet.replica import Fleet
from serving.inprocess import InProcessRunner
from serving.live import LiveModels, LoadFailed, SlotRef, wanted_versions
from serving.registry import ModelRegistry
from serving.slots import SlotState
from tests.unit.cards import clothes_card, keras_model_for
from tests.unit.serving.conftest import write_config

NAME = "livegrey"


class FakeEngine:
    name = "onnxruntime"

    def __init__(self, version: str):
        self.klass = int(version[1:]) % 10  # v3 answers class 3
        self.delay = 0.3 if version == "v1" else 0.0  # v1 answers slowly: requests are in flight when it is unloaded

    def __call__(self, values):
        time.sleep(self.delay)
        probabilities = np.zeros((len(values), 10), np.float32)
        probabilities[:, self.klass] = 1
        return probabilities


BROKEN = {"v6"}  # versions whose model file is damaged (a test may mend one)


def load_fake(model, version, engine, threads):
    if version in BROKEN:
        raise RuntimeError("model.keras is damaged")
    store.get(model, version)
    return FakeEngine(version)


@pytest.fixture(scope="module")
def stored():
    for version in ("v1", "v2", "v3", "v6"):
        card = clothes_card(name=NAME, version=version)
        store.save(card, keras_model_for(card), force=True)


@pytest.fixture
def fleet(stored, tmp_path, monkeypatch):
    monkeypatch.setenv(slots.RUNTIME_ENV, str(tmp_path))
    monkeypatch.setattr(slots, "FOLLOW_SECONDS", 0.02)
    config = write_config(tmp_path, {NAME: {"versions": ["v1", "v2"], "aliases": {"stable": "v1", "latest": "v2"}}}, live={"spare_runners": 1})
    runners = {slot.name: InProcessRunner(slot, load_fake) for slot in slots.plan(config)}
    inprocess.start(runners.values())
    refs = {name: SlotRef(runner.slot, SlotState(tmp_path, name), runner) for name, runner in runners.items()}
    live = LiveModels(config, ModelRegistry({}), refs, tmp_path)
    live.build()
    fleet = Fleet(config, live, FileBackend(tmp_path / "desired.json"), tmp_path)
    yield fleet
    live.stop()
    for runner in runners.values():
        runner.stop()


def run(coroutine):
    return asyncio.run(coroutine)


async def started(fleet):
    live = fleet.live
    live.start(fleet.live.registry.handles())
    for handle in fleet.live.registry.handles():
        handle.health.update(await handle.health.probe())
    await fleet.apply()
    assert fleet.applied()["generation"] == 1  # seeded from the configuration, and served


async def answer(fleet, alias, key=None):
    handle = fleet.live.registry.resolve(NAME, alias, key)
    return handle.version, int((await handle.infer(np.zeros((1, 28, 28, 1), np.uint8)))[0].argmax())


def test_a_loaded_version_serves_in_a_spare_and_an_alias_moves_to_it(fleet):
    async def scenario():
        await started(fleet)
        result = await fleet.load(NAME, "v3")
        assert result["runner"] == "spare-1" and result["loaded"] and result["state"] == "serving"
        assert await answer(fleet, "v3") == ("v3", 3)
        await fleet.set_alias(NAME, "stable", {"v1": 0, "v3": 100})
        assert await answer(fleet, "stable") == ("v3", 3)
        assert (await fleet.load(NAME, "v3"))["loaded"] is False  # loading it again changes nothing
        rows = {row["version"]: row for row in fleet.live.index()}
        assert rows["v3"]["runner"] == "spare-1" and rows["v3"]["status"] == "ready"

    run(scenario())


def test_a_split_alias_is_sticky_per_caller_and_weighted(fleet):
    async def scenario():
        await started(fleet)
        await fleet.set_alias(NAME, "stable", {"v1": 90, "v2": 10})
        assert len({(await answer(fleet, "stable", key="alice"))[0] for _ in range(20)}) == 1
        seen = [fleet.live.registry.resolve(NAME, "stable", key=f"user-{i}").version for i in range(2000)]
        assert 0.86 < seen.count("v1") / len(seen) < 0.94

    run(scenario())


def test_unloading_the_last_version_of_an_alias_needs_force(fleet):
    async def scenario():
        await started(fleet)
        with pytest.raises(Conflict, match="stable serves only livegrey:v1"):
            await fleet.unload(NAME, "v1")
        assert await answer(fleet, "stable") == ("v1", 1)  # nothing changed
        await fleet.set_alias(NAME, "stable", "v2")
        await fleet.change(lambda state: state["models"][NAME].update(default_version="latest"))
        result = await fleet.unload(NAME, "v1")
        assert result["state"] == "unloaded" and "v1" not in fleet.live.registry.model(NAME).handles
        with pytest.raises(NotFound):
            fleet.live.registry.resolve(NAME, "v1")
        assert (await fleet.load(NAME, "v1"))["runner"] in ("livegrey-v1", "spare-1")  # back, in a free slot

    run(scenario())


def test_an_unloaded_version_finishes_its_requests_in_flight(fleet):
    async def scenario():
        await started(fleet)
        await fleet.set_alias(NAME, "stable", "v2")
        await fleet.change(lambda state: state["models"][NAME].update(default_version="latest"))
        in_flight = asyncio.create_task(answer(fleet, "v1"))  # its runner takes 0.3 s
        await asyncio.sleep(0.05)
        await fleet.unload(NAME, "v1")
        assert await in_flight == ("v1", 1)

    run(scenario())


def test_a_failed_load_is_reported_and_changes_nothing_else(fleet):
    async def scenario():
        await started(fleet)
        with pytest.raises(LoadFailed, match="livegrey:v6 could not be loaded: livegrey:v6 failed to load: model.keras is damaged"):
            await fleet.load(NAME, "v6")
        model = fleet.live.registry.model(NAME)
        assert "v6" not in model.handles and "damaged" in model.failures["v6"]
        assert {row["version"]: row["state"] for row in fleet.live.index()}["v6"] == "failed"
        assert await answer(fleet, "stable") == ("v1", 1) and await answer(fleet, "latest") == ("v2", 2)
        assert (await fleet.load(NAME, "v3"))["runner"] == "spare-1"  # the spare was emptied again

    run(scenario())


def test_loads_need_a_stored_version_and_a_free_runner(fleet):
    async def scenario():
        await started(fleet)
        with pytest.raises(NotFound, match="livegrey:v9 is not in the model store"):
            await fleet.load(NAME, "v9")
        await fleet.load(NAME, "v3")
        with pytest.raises(Unavailable, match="no free runner"):
            await fleet.load(NAME, "v6")

    run(scenario())


def test_an_alias_moves_only_to_a_serving_version(fleet):
    async def scenario():
        await started(fleet)
        with pytest.raises(Conflict, match="livegrey:v3 does not serve"):
            await fleet.set_alias(NAME, "stable", "v3")
        with pytest.raises(Conflict, match="is a version"):
            await fleet.set_alias(NAME, "v2", "v1")
        assert fleet.live.registry.model(NAME).aliases["stable"] == "v1"

    run(scenario())


def test_promotions_are_recorded_and_rolled_back(fleet):
    async def scenario():
        await started(fleet)
        await fleet.load(NAME, "v3")
        promoted = await fleet.promote(NAME, "v3")
        assert promoted["action"] == "promote" and promoted["previous"] == "v1" and promoted["alias"] == "stable"
        assert await answer(fleet, "stable") == ("v3", 3)
        with pytest.raises(Conflict, match="already serves v3"):
            await fleet.promote(NAME, "v3")
        rolled = await fleet.rollback(NAME)
        assert rolled["version"] == "v1" and rolled["undoes"] == promoted["generation"]
        assert await answer(fleet, "stable") == ("v1", 1)
        with pytest.raises(Conflict, match="no promotion to roll back"):
            await fleet.rollback(NAME)
        history = (await fleet.desired())["models"][NAME]["promotions"]
        assert [event["action"] for event in history] == ["promote", "rollback"]

    run(scenario())


def test_a_change_based_on_a_stale_generation_is_refused_and_concurrent_ones_all_land(fleet):
    async def scenario():
        await started(fleet)
        current = (await fleet.desired())["generation"]
        await fleet.set_alias(NAME, "canary", "v2", based_on=current)
        with pytest.raises(StaleState, match=f"based on generation {current}, the current one is {current + 1}") as refused:
            await fleet.set_alias(NAME, "canary", "v1", based_on=current)
        assert refused.value.status == 409 and refused.value.headers["X-State-Generation"] == str(current + 1)
        # Without If-Match, concurrent writers are retried on the newer state: none is lost.
        await asyncio.gather(*(fleet.set_alias(NAME, f"team-{i}", "v2") for i in range(8)))
        aliases = (await fleet.desired())["models"][NAME]["aliases"]
        assert {f"team-{i}" for i in range(8)} <= set(aliases) and aliases["canary"] == "v2"
        assert set(fleet.live.registry.model(NAME).aliases) >= set(aliases)

    run(scenario())


def test_a_version_that_failed_here_is_tried_again_by_the_follower(fleet, monkeypatch):
    """A desired version this replica could not load (its cause since gone) serves after RETRY_FAILED_SECONDS."""
    from serving.fleet import desired, replica

    monkeypatch.setattr(replica, "RETRY_FAILED_SECONDS", 0.3)

    async def scenario():
        await started(fleet)
        await fleet.change(lambda state: desired.add_version(state, NAME, "v6"))  # as another replica's admin call would
        done = await fleet.apply()
        assert "damaged" in done["failures"][f"{NAME}:v6"] and "v6" not in fleet.live.registry.model(NAME).handles
        BROKEN.discard("v6")  # mended (say, published again)
        try:
            fleet.first_seen = done["generation"]
            follower = asyncio.get_running_loop().create_task(fleet._follow())
            deadline = time.monotonic() + 10
            while "v6" not in fleet.live.registry.model(NAME).handles and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            follower.cancel()
            assert "v6" in fleet.live.registry.model(NAME).handles and fleet.applied()["failures"] == {}
        finally:
            BROKEN.add("v6")

    run(scenario())


def test_an_alias_whose_version_fails_here_keeps_answering_with_what_serves_here(fleet):
    from serving.fleet import desired

    async def scenario():
        await started(fleet)

        def split_with_a_broken_version(state):
            desired.add_version(state, NAME, "v6")
            state["models"][NAME]["aliases"]["stable"] = {"v1": 50, "v6": 50}
            state["models"][NAME]["aliases"]["latest"] = "v6"

        await fleet.change(split_with_a_broken_version)  # as another replica, where v6 loads, would write it
        done = await fleet.apply()
        aliases = fleet.live.registry.model(NAME).aliases
        assert aliases["stable"] == {"v1": 50} and aliases["latest"] == "v2"  # narrowed; kept as it was
        assert await answer(fleet, "stable") == ("v1", 1)
        assert any("alias stable" in line and "v6 not served here" in line for line in done["divergence"]), done["divergence"]
        assert fleet.report()["divergence"] == done["divergence"]  # what /fleet shows of this replica

    run(scenario())


@pytest.mark.parametrize(
    "policy,expected",
    [({"latest": 2}, ["v2", "v3"]), ({"all": True}, ["v1", "v2", "v3"]), ({"specific": ["v1", "v9"]}, ["v1"])],
)
def test_version_policies(policy, expected):
    from config import VersionPolicy

    assert wanted_versions(["v1", "v2", "v3"], VersionPolicy(**policy)) == expected


def test_a_worker_starting_while_the_backend_is_unreachable_serves_what_its_replica_applied(fleet, tmp_path):
    """A replica's entry workers start one by one: one that finds the backend gone (Redis on a closed port
    here) serves the generation its siblings applied, rather than answer 503 until the backend is back;
    in a replica that applied nothing it stays unready."""
    from serving.fleet.backends.redis import RedisBackend
    from tests.e2e.conftest import free_port

    async def scenario():
        await started(fleet)
        gone = RedisBackend(f"redis://127.0.0.1:{free_port()}/0", "k", timeout=0.5)
        sibling = Fleet(fleet.config, fleet.live, gone, tmp_path)  # a worker of the same replica, starting now
        await sibling._catch_up()
        assert sibling.caught_up() and sibling.first_seen == 1
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        newcomer = Fleet(fleet.config, fleet.live, gone, fresh)  # a replica that never applied a generation
        await newcomer._catch_up()
        assert not newcomer.caught_up() and newcomer.first_seen is None
        await gone.close()

    run(scenario())
