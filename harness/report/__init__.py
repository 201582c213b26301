"""The offline HTML report: the page's data (build), its budget grid, a sample's transcript and the assets
inlined into every report.html; it may import requests/ (to read the store), analysis/ and the ground
modules, never stages/ or the commands."""
