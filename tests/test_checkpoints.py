"""ModelCheckpoint and BackupAndRestore: Keras 3 semantics, atomic files, exact resumption."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import maasfin as mf
from maasfin.callbacks import BackupAndRestore, Callback, ModelCheckpoint, ReduceLROnPlateau
from maasfin.layers import Dense, Dropout
from maasfin.models import Sequential, load_model


def _data(n=160, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] - 0.7 * x[:, 2] > 0).astype(np.float32)
    return x, y


def _model(optimizer="adam"):
    model = Sequential([Dense(8, activation="relu", input_dim=4), Dropout(0.3), Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _same_weights(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b)) and len(a) == len(b)


# -- ModelCheckpoint ---------------------------------------------------------------------------------
def test_checkpoint_every_epoch_with_formatted_names(tmp_path):
    x, y = _data()
    model = _model()
    pattern = str(tmp_path / "ckpt" / "ckpt-{epoch:02d}-{val_loss:.2f}.maas")  # the directory is created
    history = model.fit(
        x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0, callbacks=[ModelCheckpoint(pattern)]
    )
    expected = [f"ckpt-{e + 1:02d}-{v:.2f}.maas" for e, v in zip(history.epoch, history.history["val_loss"])]
    assert sorted(os.listdir(tmp_path / "ckpt")) == sorted(expected)
    last = load_model(tmp_path / "ckpt" / expected[-1])
    assert np.array_equal(last.predict(x), model.predict(x))
    assert last.optimizer.iterations == model.optimizer.iterations == 3 * 8


def test_save_best_only_keeps_improvements_only(tmp_path, capsys):
    x, y = _data()
    model = _model(mf.optimizers.SGD(0.5))
    cb = ModelCheckpoint(str(tmp_path / "best-{epoch}.maas"), monitor="val_loss", save_best_only=True, verbose=1)
    history = model.fit(x, y, epochs=6, batch_size=16, validation_split=0.25, verbose=0, callbacks=[cb])
    losses, best, saved = history.history["val_loss"], None, []
    for epoch, v in enumerate(losses):
        if best is None or v < best:
            best = v
            saved.append(f"best-{epoch + 1}.maas")
    assert sorted(os.listdir(tmp_path)) == sorted(saved) and cb.best == min(losses)
    out = capsys.readouterr().out
    assert f"Epoch 1: val_loss improved from None to {losses[0]:.5f}, saving model to {tmp_path}/best-1.maas" in out
    assert out.count("did not improve from") == len(losses) - len(saved)


def test_save_best_only_max_mode_weights_only_and_threshold(tmp_path):
    x, y = _data()
    model = _model()
    path = tmp_path / "best.weights.safetensors"
    cb = ModelCheckpoint(
        str(path),
        monitor="accuracy",
        mode="max",
        save_best_only=True,
        save_weights_only=True,
        initial_value_threshold=1.01,
    )  # nothing can beat it
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert not path.exists() and cb.best == 1.01
    cb = ModelCheckpoint(str(path), monitor="accuracy", save_best_only=True, save_weights_only=True)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert cb.mode == "max" and cb.best == max(history.history["accuracy"])
    twin = _model()
    twin.load_weights(path)
    assert twin.count_params() == model.count_params()


def test_missing_monitor_warns_and_saves(tmp_path):
    x, y = _data()
    path = tmp_path / "m.maas"
    with pytest.warns(UserWarning, match="Can save best model only with val_auc available."):
        _model().fit(
            x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(str(path), monitor="val_auc", save_best_only=True)]
        )
    assert path.exists()


def test_integer_save_freq_counts_batches_across_epochs(tmp_path):
    x, y = _data(n=64)
    cb = ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}.maas"), save_freq=3)
    _model().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])  # 4 batches per epoch
    assert sorted(os.listdir(tmp_path)) == ["e1-b3.maas", "e2-b2.maas"]


def test_checkpoint_argument_errors():
    with pytest.raises(
        ValueError,
        match=r"must end in `.maas` \(maasfin model format\), `.keras` \(Keras model "
        r"format\) or `.h5` \(legacy Keras format\). Received: filepath=m.onnx",
    ):
        ModelCheckpoint("m.onnx")
    with pytest.raises(
        ValueError,
        match=r"must end in `.weights.safetensors` \(maasfin weights format\) or "
        r"`.weights.h5`",
    ):
        ModelCheckpoint("m.maas", save_weights_only=True)
    with pytest.raises(ValueError, match=r"`.weights.h5` \(Keras weights format\). Received: filepath=m.keras"):
        ModelCheckpoint("m.keras", save_weights_only=True)
    with pytest.raises(ValueError, match="invalid save_freq 'batch'"):
        ModelCheckpoint("m.maas", save_freq="batch")
    x, y = _data()
    with pytest.raises(KeyError, match=r'Failed to format this callback filepath: "\{nope\}.maas"'):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint("{nope}.maas")])


def test_epoch_level_checkpoint_keeps_the_fast_path():
    assert not ModelCheckpoint("m.maas")._wants_batches() and ModelCheckpoint("m.maas", save_freq=5)._wants_batches()
    assert not BackupAndRestore("d")._wants_batches()


# -- BackupAndRestore in one process -----------------------------------------------------------------
class _Interrupt(Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("Interrupting!")


def _run(backup_dir, interrupt_at=None, **fit):
    mf.utils.set_random_seed(21)
    x, y = _data()
    model = _model()
    callbacks = [BackupAndRestore(backup_dir)] + ([_Interrupt(interrupt_at)] if interrupt_at is not None else [])
    history = model.fit(x, y, epochs=6, batch_size=16, verbose=0, validation_split=0.2, callbacks=callbacks, **fit)
    return model, history


def test_backup_and_restore_resumes_exactly_after_an_exception(tmp_path):
    reference, ref_history = _run(tmp_path / "ref")
    assert not (tmp_path / "ref").exists()  # deleted at the end of a completed fit
    with pytest.raises(RuntimeError, match="Interrupting!"):
        _run(tmp_path / "b", interrupt_at=4)
    assert os.listdir(tmp_path / "b") == ["backup.maas"]
    state = mf.saving.read_metadata(tmp_path / "b" / "backup.maas")["training_state"]
    assert state["epoch"] == 4 and state["seed_generator"]["bit_generator"] == "PCG64"
    resumed, history = _run(tmp_path / "b")  # a new model (other layer names), the same script
    assert history.epoch == [4, 5]  # Keras: only the remaining epochs run
    assert history.history["loss"] == ref_history.history["loss"][4:]
    assert _same_weights(resumed.get_weights(), reference.get_weights())
    assert resumed.optimizer.iterations == reference.optimizer.iterations
    assert not (tmp_path / "b").exists()


def test_backup_restores_a_reduced_learning_rate(tmp_path):
    x, y = _data()
    model = _model(mf.optimizers.SGD(0.1))
    backup = BackupAndRestore(tmp_path / "b", delete_checkpoint=False)
    # Callbacks run in list order: the backup comes after the callback that changes the rate.
    reduce = ReduceLROnPlateau("loss", factor=0.5, patience=0, min_delta=10)  # reduces after every epoch but the first
    model.fit(x, y, epochs=3, verbose=0, callbacks=[reduce, backup])
    assert model.optimizer.learning_rate == 0.025
    fresh = _model(mf.optimizers.SGD(0.1))
    history = fresh.fit(x, y, epochs=3, verbose=0, callbacks=[backup])
    assert history.epoch == [] and fresh.optimizer.learning_rate == 0.025
    assert _same_weights(fresh.get_weights(), model.get_weights())
    assert os.listdir(tmp_path / "b") == ["backup.maas"]  # delete_checkpoint=False keeps it


def test_backup_refuses_another_architecture_and_unbuilt_models(tmp_path):
    x, y = _data()
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)])
    wider = Sequential([Dense(9, activation="relu", input_dim=4), Dense(1, activation="sigmoid")])
    wider.compile("adam", "bce")
    with pytest.raises(
        mf.saving.ModelFileError, match=r"backup file '.*backup.maas': weight 'dense_\d+/kernel' has shape"
    ):
        wider.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path)])
    other_optimizer = _model("sgd")
    with pytest.raises(
        mf.saving.ModelFileError, match="holds the state of a 'Adam' optimizer, but the model is compiled with SGD"
    ):
        other_optimizer.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path)])
    with pytest.raises(ValueError, match="Empty `backup_dir` argument passed"):
        BackupAndRestore("")
    with pytest.raises(ValueError, match="invalid save_freq"):
        BackupAndRestore(tmp_path, save_freq=0)


def test_mid_epoch_backups_resume_that_epoch(tmp_path):
    x, y = _data(n=64)
    mf.utils.set_random_seed(5)
    model = _model()

    class Stop(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2 and self.model.history.epoch == [0]:
                raise RuntimeError("stop in epoch 2")

    with pytest.raises(RuntimeError):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[BackupAndRestore(tmp_path, save_freq=2), Stop()])
    assert mf.saving.read_metadata(tmp_path / "backup.maas")["training_state"]["epoch"] == 1
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[BackupAndRestore(tmp_path, save_freq=2)])
    assert history.epoch == [1, 2]  # the interrupted epoch runs again, from its start, as Keras does


# -- BackupAndRestore across a SIGKILL ---------------------------------------------------------------
TRAIN_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    import numpy as np
    import maasfin as mf
    from maasfin.callbacks import BackupAndRestore, Callback
    from maasfin.layers import Dense, Dropout
    from maasfin.models import Sequential

    backup_dir, out, kill = sys.argv[1], sys.argv[2], sys.argv[3] == "kill"
    mf.utils.set_random_seed(2024)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(240, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.float32)
    model = Sequential([Dense(16, activation="relu", input_dim=6), Dropout(0.25), Dense(8, activation="tanh"),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])

    class KillMidEpoch(Callback):
        # Batch hooks run in both runs, so both use the same (per-batch) loop.
        def on_train_batch_end(self, batch, logs=None):
            marker = os.path.join(backup_dir, "..", "killed-once")
            if kill and self.epoch == 2 and batch == 3 and not os.path.exists(marker):
                open(marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    history = model.fit(x, y, epochs=6, batch_size=16, verbose=0, shuffle=True, validation_split=0.25,
                        callbacks=[BackupAndRestore(backup_dir), KillMidEpoch()])
    np.savez(out, *model.get_weights())
    print(json.dumps({"epochs": history.epoch, "loss": history.history["loss"]}))
""")


def test_training_killed_mid_epoch_resumes_and_ends_bit_identical(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)

    def run(name, mode):
        return subprocess.run(
            [sys.executable, str(script), str(tmp_path / name), str(tmp_path / f"{name}.npz"), mode],
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = run("killed", "kill")
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert os.listdir(tmp_path / "killed") == ["backup.maas"]  # epochs 0 and 1 completed, epoch 2 was torn
    assert mf.saving.read_metadata(tmp_path / "killed" / "backup.maas")["training_state"]["epoch"] == 2
    second = run("killed", "kill")  # the same command again: the marker keeps it alive this time
    assert second.returncode == 0, second.stderr
    resumed = json.loads(second.stdout)
    reference = run("reference", "no-kill")
    assert reference.returncode == 0, reference.stderr
    full = json.loads(reference.stdout)
    assert resumed["epochs"] == [2, 3, 4, 5] and full["epochs"] == [0, 1, 2, 3, 4, 5]
    assert resumed["loss"] == full["loss"][2:]
    a, b = np.load(tmp_path / "killed.npz"), np.load(tmp_path / "reference.npz")
    assert len(a.files) == len(b.files) == 6
    assert all(np.array_equal(a[k], b[k]) for k in a.files)
    assert not (tmp_path / "killed").exists()
