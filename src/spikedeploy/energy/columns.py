"""Column names of the energy report, shared by its JSON, CSV, terminal and HTML forms."""

# One name per column everywhere: the key in JSON and CSV, the heading in the terminal table
# and the HTML page (COLUMN_HEADINGS also names the HTML page's extra columns).
COLUMN_HEADINGS = {
    "layer": "layer", "type": "type", "neurons": "neurons", "synapses": "synapses",
    "input_spikes": "input spikes", "output_spikes": "output spikes",
    "firing_rate": "firing rate", "synops_ac": "synops AC", "macs": "MACs",
    "macs_dense": "dense MACs", "bias_adds": "bias adds", "active_updates": "active updates",
    "inactive_updates": "inactive updates", "energy_pj": "energy pJ",
}
