"""Writes a valid frozen GraphDef that is not a DeepLab graph; run as a script, never imported by pytest."""

from __future__ import annotations

import sys

import tensorflow as tf


def main() -> None:
    with tf.Graph().as_default() as graph:
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="input")
        tf.identity(x * 2.0, name="output")
    with open(sys.argv[1], "wb") as out:
        out.write(graph.as_graph_def().SerializeToString())


if __name__ == "__main__":
    main()
