// fcitx5's next-word prediction, asked from the command line, so that
// scripts/feature_checks.py engines can score it beside our engine.
//
// Reads one prefix per line (words separated by tabs, possibly none) and prints
// libime's top K for it, tab-separated, one line per prefix (empty when libime
// has nothing: no entry for the last word in its prev|next table or history).
// A line "+<TAB>word<TAB>word..." is a finished sentence: it goes to the user
// history (as fcitx5 learns what is committed) and prints nothing.
// As fcitx5-chinese-addons' pinyin engine asks after each commit
// (PinyinEngine::initPredict): libime::Prediction over a UserLanguageModel, the
// model's state after the sentence's words from <s>, and its default
// "Prediction Size" of 10, of which the first K are printed. Candidates come
// from the table, then the history; they are ranked by the KenLM model's score
// mixed with the history's.
//
// Build (Debian: apt-get install g++ libimecore-dev libfcitx5utils-dev
//         libboost-dev libime-data-language-model):
//   g++ -std=c++17 -O2 -I/usr/include/LibIME -I/usr/include/Fcitx5/Utils
//       scripts/libime_top.cpp -lIMECore -lFcitx5Utils -o libime_top  (one line)
// Run: ./libime_top /usr/lib/x86_64-linux-gnu/libime/zh_CN.lm 5 < prefixes.tsv
#include <algorithm>
#include <libime/core/historybigram.h>
#include <libime/core/lattice.h>
#include <libime/core/prediction.h>
#include <libime/core/userlanguagemodel.h>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char **argv) {
    if (argc < 3) { std::cerr << "usage: libime_top MODEL.lm K\n"; return 2; }
    libime::UserLanguageModel model(argv[1]);
    libime::Prediction prediction;
    prediction.setUserLanguageModel(&model);
    size_t k = std::stoul(argv[2]);
    size_t ask = std::max<size_t>(k, 10);  // fcitx5's PredictionSize default
    std::string line;
    while (std::getline(std::cin, line)) {
        std::vector<std::string> words;
        std::stringstream in(line);
        std::string word;
        bool learn = line.rfind("+\t", 0) == 0;
        if (learn) std::getline(in, word, '\t');  // the "+" itself
        while (std::getline(in, word, '\t')) if (!word.empty()) words.push_back(word);
        if (learn) {
            model.history().add(words);
            continue;
        }
        libime::State state = model.beginState(), next;
        for (const auto &w : words) {
            libime::WordNode node(w, model.index(w));
            model.score(state, node, next);
            state = std::move(next);
        }
        auto top = prediction.predict(state, words, ask);
        for (size_t i = 0; i < top.size() && i < k; ++i) std::cout << (i ? "\t" : "") << top[i];
        std::cout << "\n";
    }
    return 0;
}
