"""The vendored ECharts draws what the dashboards need, from the app's static files."""

import json

MAP_URL = "/static/vendor/maps/guangdong.json"
ECHARTS_URL = "/static/vendor/echarts/echarts.min.js"

DRAW = """
async ([mapUrl]) => {
  document.body.innerHTML = '<div id="chart" style="width:100%;height:520px"></div>';
  const geo = await (await fetch(mapUrl)).json();
  echarts.registerMap('guangdong', geo);
  const chart = echarts.init(document.getElementById('chart'));
  const cities = geo.features.map((f, i) => ({name: f.properties.name, value: i * 10}));
  chart.setOption({
    animation: false,
    visualMap: {min: 0, max: 200, left: 'left', bottom: 0, seriesIndex: 0},
    grid: {top: 330, height: 150},
    xAxis: {type: 'category', data: ['9月', '10月']},
    yAxis: {type: 'value'},
    series: [
      {type: 'map', map: 'guangdong', top: 0, height: 300, data: cities},
      {type: 'bar', data: [3, 5]},
      {type: 'line', data: [2, 4]},
      {type: 'pie', center: ['85%', '15%'], radius: 30, data: [{name: 'a', value: 1}]},
    ],
  });
  const model = chart.getModel();
  const mapSeries = model.getSeriesByType('map')[0];
  return {
    types: model.getSeries().map((s) => s.subType),
    visualMaps: model.queryComponents({mainType: 'visualMap'}).length,
    regions: mapSeries.getData().count(),
    named: geo.features.every((f) => mapSeries.getData().indexOfName(f.properties.name) >= 0),
  };
}
"""


def test_echarts_draws_the_guangdong_map_with_a_visual_map_and_bar_line_pie(
    page, live_server, shot
):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server + MAP_URL)  # same origin for fetch(); the JSON is served as such
    assert len(json.loads(page.inner_text("body"))["features"]) == 21
    page.add_script_tag(url=live_server + ECHARTS_URL)
    result = page.evaluate(DRAW, [MAP_URL])
    assert result == {
        "types": ["map", "bar", "line", "pie"],
        "visualMaps": 1,
        "regions": 21,
        "named": True,
    }
    assert errors == []
    assert page.locator("#chart canvas").count() >= 1
    shot("dashboard-charts")
