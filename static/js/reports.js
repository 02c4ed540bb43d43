/* Dashboards: draw each [data-chart] from the JSON in #report-data with ECharts.
 * The table beside every chart holds the same numbers and is what screen readers use;
 * the charts are aria-hidden pictures of it. Loaded with `defer` after echarts.min.js. */
(function () {
  'use strict';
  var source = document.getElementById('report-data');
  if (!source || !window.echarts) { return; }
  var data = JSON.parse(source.textContent);
  var labels = data.labels;
  var green = ['#1f6f43', '#4c9a6a', '#8cc5a0', '#d3a13b', '#b3261e', '#23467a', '#7a4a00', '#6b6b6b', '#9c6ade'];
  var charts = [];

  function yuan(value) {
    return '¥' + Number(value).toLocaleString('zh-CN', {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }

  function bar(names, values, horizontal) {
    var category = {type: 'category', data: names, axisLabel: {interval: 0, width: 90, overflow: 'truncate'}};
    var value = {type: 'value', axisLabel: {formatter: function (v) { return v >= 10000 ? (v / 10000) + '万' : v; }}};
    return {
      color: green,
      grid: {left: horizontal ? 100 : 56, right: 16, top: 24, bottom: horizontal ? 24 : 48},
      tooltip: {trigger: 'axis', valueFormatter: yuan},
      xAxis: horizontal ? value : category,
      yAxis: horizontal ? Object.assign(category, {inverse: true}) : value,
      series: [{type: 'bar', name: labels.gmv, data: values}]
    };
  }

  function pie(items, element) {
    // On a phone the labels beside the ring would be cut off: the legend and the table
    // name the parts there.
    var roomy = element.clientWidth >= 480;
    return {
      color: green,
      tooltip: {trigger: 'item', valueFormatter: yuan},
      legend: {bottom: 0, type: 'scroll'},
      series: [{type: 'pie', radius: roomy ? ['35%', '65%'] : ['40%', '72%'], center: ['50%', '45%'],
                data: items, label: {show: roomy, formatter: '{b}\n{d}%'}}]
    };
  }

  var builders = {
    trend: function () {
      var t = data.trend;
      return {
        color: green,
        tooltip: {trigger: 'axis'},
        legend: {top: 0},
        grid: {left: 56, right: 40, top: 36, bottom: 40},
        xAxis: {type: 'category', data: t.periods},
        yAxis: [{type: 'value'}, {type: 'value', minInterval: 1, splitLine: {show: false}}],
        series: [
          {type: 'bar', name: labels.gmv, data: t.gmv, tooltip: {valueFormatter: yuan}},
          {type: 'line', name: labels.orders, yAxisIndex: 1, data: t.orders,
           showSymbol: t.orders.length <= 31}
        ]
      };
    },
    children: function () { return bar(data.children.names, data.children.gmv, true); },
    categories: function (element) { return pie(data.categories, element); },
    gi: function (element) { return pie(data.gi, element); },
    reach: function (element) { return pie(data.reach, element); },
    destinations: function () { return bar(data.destinations.names, data.destinations.gmv, true); },
    indicators: function () {
      var rows = data.indicators;
      var names = rows.map(function (r) { return r.name; });
      return {
        color: ['#1f6f43', '#d3a13b'],
        tooltip: {trigger: 'axis', valueFormatter: function (v) { return v == null ? '—' : v + '%'; }},
        legend: {top: 0},
        grid: {left: 120, right: 24, top: 32, bottom: 24},
        xAxis: {type: 'value', max: 100, axisLabel: {formatter: '{value}%'}},
        yAxis: {type: 'category', data: names, inverse: true, axisLabel: {width: 110, overflow: 'break'}},
        series: [
          {type: 'bar', name: labels.actual, data: rows.map(function (r) { return r.actual; })},
          {type: 'scatter', name: labels.target, symbol: 'diamond', symbolSize: 14,
           data: rows.map(function (r) { return r.target; })}
        ]
      };
    },
    map: function () {
      var values = data.map.map(function (d) { return d.value; });
      var max = Math.max.apply(null, values.concat([1]));
      var named = {};
      data.map.forEach(function (d) { named[d.name] = d.label; });
      return {
        tooltip: {trigger: 'item', formatter: function (p) {
          return (named[p.name] || p.name) + (p.value >= 0 ? '<br>' + yuan(p.value) : '');
        }},
        visualMap: {min: 0, max: max, left: 'left', bottom: 0, calculable: true,
                    inRange: {color: ['#e8f2ec', '#1f6f43']}, formatter: function (v) { return yuan(v); }},
        series: [{type: 'map', map: 'guangdong', nameProperty: 'adcode', roam: false,
                  top: 8, bottom: 48, data: data.map, emphasis: {label: {show: false}}}]
      };
    }
  };

  function draw(element, option) {
    var chart = echarts.init(element, null, {renderer: 'canvas'});
    chart.setOption(Object.assign({animation: false}, option));
    charts.push(chart);
  }

  document.querySelectorAll('[data-chart]').forEach(function (element) {
    var name = element.getAttribute('data-chart');
    if (name === 'map') {
      fetch(data.mapUrl).then(function (response) { return response.json(); }).then(function (geo) {
        if (!echarts.getMap('guangdong')) { echarts.registerMap('guangdong', geo); }
        draw(element, builders.map());
        element.setAttribute('data-drawn', 'true');
      });
      return;
    }
    draw(element, builders[name](element));
    element.setAttribute('data-drawn', 'true');
  });

  var pending = null;
  window.addEventListener('resize', function () {
    clearTimeout(pending);
    pending = setTimeout(function () { charts.forEach(function (c) { c.resize(); }); }, 150);
  });
  window.addEventListener('beforeprint', function () { charts.forEach(function (c) { c.resize(); }); });
}());
