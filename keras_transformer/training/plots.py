"""Figures people would rather see than read: attention maps, confusion
matrices, learning curves. The only module that imports matplotlib.
"""

import io

import keras


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def attention_maps(model, inputs, block_names=None):
    """Attention probabilities of a model's Transformer blocks for `inputs`.

    Works for functional models built from `TransformerEncoder` and
    `TransformerDecoder` blocks: each block's input is recomputed with a
    sub-model and its self-attention is re-run with
    `return_attention_scores=True` (with the causal mask for decoder blocks
    and the Keras padding mask carried by the block input).

    Args:
        model: a functional `keras.Model`.
        inputs: one batch of inputs for `model`.
        block_names: names of the blocks; defaults to every encoder and
            decoder block.

    Returns:
        A dict `{block name: numpy array [B, N, T, T]}`.
    """
    from keras_transformer.layers import TransformerDecoder, TransformerEncoder

    blocks = [
        layer
        for layer in model.layers
        if isinstance(layer, (TransformerEncoder, TransformerDecoder))
        and (block_names is None or layer.name in block_names)
    ]
    if not blocks:
        raise ValueError(
            "The model has no TransformerEncoder/TransformerDecoder blocks "
            f"to draw. Received: block_names={block_names}"
        )
    probe = keras.Model(model.inputs, [_block_input(block) for block in blocks])
    block_inputs = probe(inputs, training=False)
    if not isinstance(block_inputs, (list, tuple)):
        block_inputs = [block_inputs]
    maps = {}
    for block, x in zip(blocks, block_inputs):
        if block.normalize_first:
            norm_name = (
                "self_attention_norm"
                if isinstance(block, TransformerDecoder)
                else "attention_norm"
            )
            x = getattr(block, norm_name)(x)
        causal = isinstance(block, TransformerDecoder)
        _, scores = block.self_attention(
            x, use_causal_mask=causal, return_attention_scores=True
        )
        maps[block.name] = keras.ops.convert_to_numpy(
            keras.ops.cast(scores, "float32")
        )
    return maps


def _block_input(block):
    # The block's first call in the functional graph; its main input.
    block_input = block.input
    if isinstance(block_input, (list, tuple)):
        block_input = block_input[0]
    return block_input


def render_attention_png(scores, tokens=None, title=""):
    """Draws [N, T, S] attention probabilities as one PNG (bytes)."""
    plt = _pyplot()
    heads = scores.shape[0]
    fig, axes = plt.subplots(1, heads, figsize=(3 * heads, 3.2), squeeze=False)
    for head, ax in enumerate(axes[0]):
        ax.imshow(scores[head], vmin=0.0, vmax=1.0, cmap="viridis")
        ax.set_title(f"{title} head {head}", fontsize=8)
        if tokens is not None:
            n = min(len(tokens), scores.shape[-1])
            ax.set_xticks(range(n), tokens[:n], rotation=90, fontsize=6)
            ax.set_yticks(range(n), tokens[:n], fontsize=6)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def plot_confusion_matrix(matrix, class_names, title="Confusion matrix"):
    """Draws a confusion matrix and returns it as PNG bytes.

    Args:
        matrix: C x C counts, rows true class, columns predicted.
        class_names: list of C str.
        title: the figure title.

    Returns:
        The PNG file content, bytes.
    """
    plt = _pyplot()
    import numpy as np

    matrix = np.asarray(matrix)
    size = 1.0 + 0.9 * len(class_names)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    try:
        image = axes.imshow(matrix, cmap="Blues")
        figure.colorbar(image, ax=axes)
        ticks = np.arange(len(class_names))
        axes.set_xticks(ticks, class_names, rotation=45, ha="right")
        axes.set_yticks(ticks, class_names)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_title(title)
        threshold = matrix.max() / 2.0 if matrix.size else 0
        for (row, column), count in np.ndenumerate(matrix):
            axes.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                color="white" if count > threshold else "black",
            )
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(figure)
    return buffer.getvalue()


def plot_learning_curves(history, title="Learning curves"):
    """Draws training and validation curves and returns them as PNG bytes.

    Args:
        history: dict `{metric name: [value per epoch]}`, e.g.
            `keras.callbacks.History.history`.
        title: str, the figure title.

    Returns:
        The PNG file content, bytes.
    """
    plt = _pyplot()
    names = sorted(n for n in history if not n.startswith("val_"))
    names = [n for n in names if n not in ("learning_rate",)] or names
    figure, axes = plt.subplots(
        1,
        max(1, len(names)),
        figsize=(4 * max(1, len(names)), 3),
        squeeze=False,
    )
    try:
        for ax, name in zip(axes[0], names):
            ax.plot(range(1, len(history[name]) + 1), history[name], label=name)
            if f"val_{name}" in history:
                values = history[f"val_{name}"]
                ax.plot(range(1, len(values) + 1), values, label=f"val_{name}")
            ax.set_xlabel("epoch")
            ax.set_title(name)
            ax.legend(fontsize=7)
        figure.suptitle(title)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
    finally:
        plt.close(figure)
    return buffer.getvalue()
