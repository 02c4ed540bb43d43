/* Shrink photos in the browser before they are uploaded.
 *
 * Phone cameras make 4-12 MB photos; on a slow 3G/4G link that is minutes of upload.
 * For every <input type="file" data-resize="1600"> inside a <form data-photo-form>, a
 * chosen photo larger than that many pixels on its long side (or heavier than 1.5 MB) is
 * redrawn on a canvas and re-encoded as JPEG quality 0.85, and the input's file is
 * replaced by the smaller one, so the form still submits the ordinary way. A canvas
 * copy also carries no EXIF (no GPS position). Where anything is missing or fails, the
 * original file is sent and the server does the work: the form works without this.
 */
(function () {
  "use strict";

  var QUALITY = 0.85;
  var LIGHT_ENOUGH = 1.5 * 1024 * 1024;

  function supported() {
    if (!window.HTMLCanvasElement || !window.URL || !window.Promise || !window.DataTransfer) {
      return false;
    }
    try {
      var probe = new DataTransfer();
      probe.items.add(new File(["x"], "x.jpg", { type: "image/jpeg" }));
      return probe.files.length === 1;
    } catch (err) {
      return false;
    }
  }

  function loadImage(file) {
    return new Promise(function (resolve, reject) {
      var url = URL.createObjectURL(file);
      var img = new Image();
      img.onload = function () { resolve({ img: img, url: url }); };
      img.onerror = function () { URL.revokeObjectURL(url); reject(new Error("not an image")); };
      img.src = url;
    });
  }

  function toBlob(canvas) {
    return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", QUALITY); });
  }

  /* Resolves to a smaller File, or null to keep the original. */
  function shrink(file, maxSide) {
    if (!/^image\//.test(file.type || "image/")) { return Promise.resolve(null); }
    return loadImage(file).then(function (loaded) {
      var img = loaded.img;
      var width = img.naturalWidth, height = img.naturalHeight;
      var scale = Math.min(1, maxSide / Math.max(width, height));
      if (!width || !height || (scale === 1 && file.size <= LIGHT_ENOUGH)) {
        URL.revokeObjectURL(loaded.url);
        return null;
      }
      var canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(width * scale));
      canvas.height = Math.max(1, Math.round(height * scale));
      var ctx = canvas.getContext("2d");
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = "high";
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      URL.revokeObjectURL(loaded.url);
      return toBlob(canvas).then(function (blob) {
        if (!blob || blob.size >= file.size) { return null; }
        var name = (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg";
        return new File([blob], name, { type: "image/jpeg", lastModified: Date.now() });
      });
    });
  }

  function watch(form) {
    var pending = 0;
    var waiting = [];

    function done() {
      pending -= 1;
      if (pending === 0) {
        form.removeAttribute("aria-busy");
        waiting.splice(0).forEach(function (resume) { resume(); });
      }
    }

    form.querySelectorAll("input[type=file][data-resize]").forEach(function (input) {
      var maxSide = parseInt(input.getAttribute("data-resize"), 10) || 1600;
      input.addEventListener("change", prepare);
      // A file may be chosen before this script ran (slow page, or restored on "back").
      if (input.files && input.files.length) { prepare(); }

      function prepare() {
        var files = Array.prototype.slice.call(input.files || []);
        if (!files.length) { return; }
        var preview = form.querySelector("[data-photo-preview]");
        if (preview && input.multiple === false) {
          preview.src = URL.createObjectURL(files[0]);
          preview.hidden = false;
        }
        pending += 1;
        form.setAttribute("aria-busy", "true");
        Promise.all(files.map(function (file) {
          return shrink(file, maxSide).catch(function () { return null; });
        })).then(function (smaller) {
          if (!smaller.some(Boolean)) { return; }
          var replacement = new DataTransfer();
          smaller.forEach(function (file, i) { replacement.items.add(file || files[i]); });
          input.files = replacement.files;
        }).catch(function () { /* keep the original files */ }).then(done);
      }
    });

    form.addEventListener("submit", function (event) {
      if (pending === 0) { return; }
      event.preventDefault();
      var submitter = event.submitter;
      waiting.push(function () {
        if (form.requestSubmit) {
          form.requestSubmit(submitter || undefined);
        } else {
          if (submitter && submitter.name) {
            var hidden = document.createElement("input");
            hidden.type = "hidden";
            hidden.name = submitter.name;
            hidden.value = submitter.value;
            form.appendChild(hidden);
          }
          form.submit();
        }
      });
    });
  }

  if (!supported()) { return; }
  document.querySelectorAll("form[data-photo-form]").forEach(watch);
})();
