// Shared by the hartool pages: one colour per label index, readable on a dark background.
"use strict";
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac", "#86bcb6", "#d37295"];
function labelColour(i) { return PALETTE[i % PALETTE.length]; }
function fmtPct(x) { return (x === null || x === undefined) ? "-" : (100 * x).toFixed(1) + " %"; }
